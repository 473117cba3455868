/**
 * An answer's body as text, if it is at most `maxBytes` bytes and arrives whole; otherwise
 * undefined (the rest is cancelled). A hostile or broken server cannot make the client hoard.
 */
export async function boundedText(res: Response, maxBytes: number): Promise<string | undefined> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return undefined; // cut short: whatever it held is not whole
  }
  return text + decoder.decode();
}
