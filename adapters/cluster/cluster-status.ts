import type { ClusterStatus, ReplicaStatus, VolumeStatus } from '../../storage/index.ts';
import { isWritable, nodesById, readOnlyReason, replicaState } from './cluster-view.ts';
import type { ClusterView, ReplicaFigures } from './directory/types.ts';

/**
 * `GET /status` of a cluster (CLUSTER.md): nodes and logical volumes as the Directory has them,
 * and the store's figures over every logical volume, counting one replica of each (an `ok` one
 * when there is one), as the figures its node last reported.
 */
export function clusterStatus(view: ClusterView, nextKey: number): ClusterStatus {
  const nodes = nodesById(view);
  const volumes: VolumeStatus[] = view.volumes.map((volume) => {
    const counted =
      volume.replicas.find((replica) => replicaState(replica, nodes) === 'ok') ??
      volume.replicas[0];
    const figures: ReplicaFigures = counted ?? {
      bytes: 0,
      liveNeedles: 0,
      deletedNeedles: 0,
      liveBytes: 0,
      garbageBytes: 0,
    };
    return {
      id: volume.id,
      bytes: figures.bytes,
      liveNeedles: figures.liveNeedles,
      deletedNeedles: figures.deletedNeedles,
      liveBytes: figures.liveBytes,
      garbageBytes: figures.garbageBytes,
      garbageRatio: figures.bytes === 0 ? 0 : figures.garbageBytes / figures.bytes,
      sealed: !isWritable(volume, nodes),
      readOnly: volume.state === 'read-only',
    };
  });
  const sum = (field: 'bytes' | 'liveNeedles' | 'deletedNeedles' | 'liveBytes' | 'garbageBytes') =>
    volumes.reduce((total, volume) => total + volume[field], 0);
  const bytes = sum('bytes');
  const garbageBytes = sum('garbageBytes');
  return {
    nodes: view.nodes.map((node) => ({
      id: node.id,
      url: node.url,
      state: node.up ? 'up' : 'down',
      lastHeartbeat: node.lastHeartbeat.toISOString(),
      bytesFree: node.bytesFree,
    })),
    logicalVolumes: view.volumes.map((volume) => ({
      id: volume.id,
      state: isWritable(volume, nodes) ? 'writable' : 'read-only',
      reason: readOnlyReason(volume, nodes),
      replicas: volume.replicas.map((replica) => ({
        node: replica.node,
        state: replicaState(replica, nodes),
      })),
    })),
    volumes,
    liveNeedles: sum('liveNeedles'),
    deletedNeedles: sum('deletedNeedles'),
    bytes,
    liveBytes: sum('liveBytes'),
    garbageBytes,
    garbageRatio: bytes === 0 ? 0 : garbageBytes / bytes,
    nextKey,
  };
}

/**
 * The view with each replica's figures as its node answers them now (`GET /status` of the
 * node), where it did; the others keep the figures of their last heartbeat.
 */
export function withLiveFigures(
  view: ClusterView,
  live: ReadonlyMap<string, readonly ReplicaStatus[]>,
): ClusterView {
  return {
    ...view,
    volumes: view.volumes.map((volume) => ({
      ...volume,
      replicas: volume.replicas.map((replica) => {
        const now = live.get(replica.node)?.find((status) => status.volume === volume.id);
        if (!now) return replica;
        return {
          ...replica,
          bytes: now.bytes,
          liveNeedles: now.liveNeedles,
          deletedNeedles: now.deletedNeedles,
          liveBytes: now.liveBytes,
          garbageBytes: now.garbageBytes,
        };
      }),
    })),
  };
}
