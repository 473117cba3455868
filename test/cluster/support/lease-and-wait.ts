import { openDirectory } from '../../../adapters/cluster/directory/index.ts';

/**
 * A gateway's key leasing and nothing else, for a test to kill: opens the Directory at argv[2],
 * leases argv[4] keys for volume argv[3], prints the lease as one JSON line, then waits (with
 * its pool open) until it is killed.
 */
const [url, volume, count] = process.argv.slice(2);
if (url === undefined || volume === undefined || count === undefined) {
  throw new Error('usage: lease-and-wait.ts URL VOLUME COUNT');
}
const directory = await openDirectory(url);
const lease = await directory.leaseKeys(Number(volume), Number(count), `child-${process.pid}`);
process.stdout.write(`${JSON.stringify(lease)}\n`);
setInterval(() => {}, 60_000);
