import { defaults } from './config.ts';
import { DRAIN_GRACE_MS } from './drain.ts';

export const usage = `Usage: haystack <command> [options]

A Haystack blob store: files are appended as needles to large volume files (.dat) and found
through a small index (.idx), served over HTTP.

Commands:
  start     Serve the store over HTTP until Ctrl+C or SIGTERM.
  reload    Rebuild every index file (.idx) from the volume files (.dat), with progress on a
            terminal and a summary at the end. The server must be stopped.
  verify    Read every needle, check every checksum and compare the index files with the
            volumes; change nothing (the server may be running). Exit 1 on problems.
  compact   Rewrite every volume without its deleted and replaced needles. The server must
            be stopped (a running one compacts online: POST /admin/compact).
  help      Show this text (also -h, --help).

Options (each also from the environment; a flag wins over its variable):
  --data DIR        Data directory, created if missing.          HAYSTACK_DATA
                    Default ./data
  --port N          TCP port to listen on; 0 picks a free one.   HAYSTACK_PORT
                    Default 8080
  --host H          Address to listen on.                        HAYSTACK_HOST
                    Default 127.0.0.1 (use 0.0.0.0 or :: for every interface)
  --max-body BYTES  Largest file accepted by POST and PUT; a     HAYSTACK_MAX_BODY
                    larger one gets 413 and nothing is stored. Bytes, or with a K, M or G
                    suffix for KiB, MiB, GiB (powers of 1024): 1000, 512K, 64M, 1GiB.
                    Default 64M (67108864)
  --fsync MODE      always | never                               HAYSTACK_FSYNC
                    Default always
                    always: a write is answered only once it is on disk (fdatasync);
                      concurrent writes share one flush. Acknowledged writes survive a
                      crash of the server or of the machine.
                    never: faster; flushing is left to the operating system, to
                      DELETE /sync and to stopping the server. A crash of the machine or a
                      power cut CAN LOSE WRITES THAT WERE ALREADY ACKNOWLEDGED.
  --volume-size B   Size at which a new volume file is started     HAYSTACK_VOLUME_SIZE
                    (1.dat, 2.dat, ...); suffixes as --max-body. From 1M to 32G.
                    Default 4G
  --compact-at R    Compact a full volume in the background once   HAYSTACK_COMPACT_AT
                    this share of its bytes is deleted or replaced files (0.3: 30%).
                    Default: off (POST /admin/compact, or the compact command)
  --read-only       Serve reads only: POST, PUT and DELETE       HAYSTACK_READ_ONLY
                    answer 403 read_only. The server still owns the data directory.
  --require-cookie  Only /file/{key},{cookie} names a file: a    HAYSTACK_REQUIRE_COOKIE
                    bare /file/{key} answers 404, as a missing file would. Uploads
                    answer the id as "fid" and in Location. Recommended wherever
                    strangers can reach the server: keys are easy to guess, cookies
                    are not.
  --inline-active   Serve HTML, SVG, XML and PDF files inline.   HAYSTACK_INLINE_ACTIVE
                    Default: off, they are sent as downloads (Content-Disposition:
                    attachment). Every file answer carries Content-Security-Policy:
                    sandbox, so stored scripts never run either way.
  --admin-token T   Turns on POST /admin/compact and             HAYSTACK_ADMIN_TOKEN
                    POST /admin/volumes/{id}/readonly, which then need the header
                    "Authorization: Bearer T": at least 16 of A-Z a-z 0-9 - . _ ~ + /
                    (openssl rand -hex 24 makes one). Prefer the variable:
                    flags show in ps to every user of the machine.
                    Default: off (no /admin routes at all)
  --max-connections N  Open connections at most; past it a new   HAYSTACK_MAX_CONNECTIONS
                    one is closed as soon as it is accepted. Keep it under the
                    descriptor limit (ulimit -n) less two per volume.
                    Default ${defaults.maxConnections}
  --max-pipeline N  Unanswered requests one connection may have  HAYSTACK_MAX_PIPELINE
                    (HTTP pipelining); one more closes the connection.
                    Default ${defaults.maxPipeline}
  --headers-timeout T  Time a request's header block may take    HAYSTACK_HEADERS_TIMEOUT
                    to arrive; then 408 and the connection is closed. 20s, 500ms, or
                    seconds (1.5). Default ${defaults.headersTimeout}
  --idle-timeout T  A connection on which no byte arrives and     HAYSTACK_IDLE_TIMEOUT
                    none of the pending answer leaves for this long is closed
                    (a stalled upload, a client that stops reading), unless it only
                    waits for the server's answer. Default ${defaults.idleTimeout}
  (The variables of the switches, --read-only, --require-cookie and --inline-active,
   take 1, true, 0 or false.)

Stopping: Ctrl+C or SIGTERM stops taking connections, lets requests in flight finish (for up
to ${DRAIN_GRACE_MS / 1000} s), then syncs and closes the store. A second signal exits at once.

Exit status: 0 done, 1 failed (for example the data directory is in use by another
server), 2 bad command line.

Examples:
  npm start -- --data /srv/haystack --port 8080
  HAYSTACK_DATA=/srv/haystack HAYSTACK_PORT=0 npx haystack start
  HAYSTACK_ADMIN_TOKEN=$(openssl rand -hex 24) npx haystack start --require-cookie
  npm run reload -- --data /srv/haystack
`;
