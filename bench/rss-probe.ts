/**
 * Preloaded (`--import`) into the server that `npm run bench:index` starts to measure its RSS,
 * and nowhere else: on SIGUSR2 it runs two full collections (the child runs with --expose-gc) and
 * writes one line to stderr, `rss-probe {json}`, with the heap figures after them, so the bench
 * reads the server's RSS from outside after a GC. It allocates nothing until the signal.
 */
process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const { heapUsed, heapTotal, arrayBuffers, external } = process.memoryUsage();
  process.stderr.write(
    `rss-probe ${JSON.stringify({ gc: gc !== undefined, heapUsed, heapTotal, arrayBuffers, external })}\n`,
  );
});
