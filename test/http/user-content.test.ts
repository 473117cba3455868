import { describe, expect, it } from 'vitest';
import { FILE_CSP, isActiveType } from '../../handlers/file-response.ts';
import { requestPath } from '../../handlers/request-path.ts';
import { setup, upload } from './helpers.ts';

describe('requestPath', () => {
  it.each([
    ['http://999.1.1.1/file', '/file'],
    ['http://-1.0.0.1:8080/media/file/7?x=1', '/media/file/7'],
    ['http://[::1]:8080/file/7#frag', '/file/7'],
    ['https://h/a%2Fb/file', '/a%2Fb/file'],
    ['http://h', '/'],
    ['http://h?q', '/'],
  ])('%s has the path %s, as sent', (url, path) => {
    expect(requestPath(url)).toBe(path);
  });
});

describe('isActiveType', () => {
  it.each([
    'text/html',
    'TEXT/HTML; charset=utf-8',
    ' text/html ',
    'image/svg+xml',
    'application/xhtml+xml',
    'application/atom+xml',
    'text/xml',
    'application/xml',
    'application/pdf',
  ])('%s is active', (type) => expect(isActiveType(type)).toBe(true));

  it.each(['image/jpeg', 'text/plain', 'application/json', 'video/mp4', 'text/htmlx', ''])(
    '%s is not',
    (type) => expect(isActiveType(type)).toBe(false),
  );
});

describe('file responses', () => {
  it('carry the sandbox policy on 200, 206 and HEAD, and an attachment disposition for HTML', async () => {
    const { app } = setup();
    const page = await upload(app, '<script>alert(1)</script>', { 'content-type': 'text/html' });
    const answers = [
      await app.request(`/file/${page.key}`),
      await app.request(`/file/${page.key}`, { headers: { range: 'bytes=0-3' } }),
      await app.request(`/file/${page.key}`, { method: 'HEAD' }),
    ];
    expect(answers.map((res) => res.status)).toEqual([200, 206, 200]);
    for (const res of answers) {
      expect(res.headers.get('content-security-policy')).toBe(FILE_CSP);
      expect(res.headers.get('content-disposition')).toBe('attachment');
    }
  });

  it('leave passive types inline, and active ones too when the app says so', async () => {
    const passive = setup();
    const text = await upload(passive.app, 'hello', { 'content-type': 'text/plain' });
    const plain = await passive.app.request(`/file/${text.key}`);
    expect(plain.headers.get('content-disposition')).toBeNull();
    expect(plain.headers.get('content-security-policy')).toBe(FILE_CSP);

    const inline = setup({ inlineActive: true });
    const page = await upload(inline.app, '<p>hi</p>', { 'content-type': 'text/html' });
    const res = await inline.app.request(`/file/${page.key}`);
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('content-security-policy')).toBe(FILE_CSP);
  });
});
