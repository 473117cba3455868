import type { BlankEnv } from 'hono/types';
import type { BlobStore } from '../storage/index.ts';
import type { DiscardBounds } from './upload.ts';

/**
 * The app's Hono environment. It sets no context variables: what the routes need is
 * `AppSettings`, resolved once by `createApp` and closed over by the handlers, not set again on
 * every request. (What the per-request wrapper and the handlers tell each other goes in three
 * symbol slots of the Context, see exchange.ts.)
 */
export type AppEnv = BlankEnv;

/** `createApp`'s options with their defaults applied: what every route is built with. */
export interface AppSettings {
  store: BlobStore;
  /** Largest upload accepted, in bytes. */
  maxBody: number;
  /** A bare `/file/{key}` is not_found: only `/file/{key},{cookie}` names a file. */
  requireCookie: boolean;
  /** HTML, SVG and other active types are served inline rather than as attachments. */
  inlineActive: boolean;
  /** How much of a refused upload is read and dropped before the connection is let go. */
  discardBounds: DiscardBounds;
}
