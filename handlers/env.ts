import type { BlobStore } from '../storage/index.ts';
import type { DiscardBounds } from './upload.ts';

/** What every route finds on its context: set once per request by `createApp`'s middleware. */
export interface AppEnv {
  Variables: {
    store: BlobStore;
    /** Largest upload accepted, in bytes. */
    maxBody: number;
    /** A bare `/file/{key}` is not_found: only `/file/{key},{cookie}` names a file. */
    requireCookie: boolean;
    /** HTML, SVG and other active types are served inline rather than as attachments. */
    inlineActive: boolean;
    /** How much of a refused upload is read and dropped before the connection is let go. */
    discardBounds: DiscardBounds;
  };
}
