import { newDataKey, openCode, sealCode, type DataKey } from '../../src/domain/sealing.js';
import type { CodeOpener } from '../../src/domain/audit.js';
import type { CodeSealing } from '../../src/writer/ports.js';

/** The campaigns' data keys in memory: the writer's CodeSealing twin, and the opener an audit needs. */
export function memoryCodes(): CodeSealing & { keys: Map<string, DataKey>; open: CodeOpener; fail: Set<string> } {
  const keys = new Map<string, DataKey>();
  /** campaigns whose key cannot be had (a shredded key, a CODE_KEYS without it) */
  const fail = new Set<string>();
  const keyOf = (campaignId: string) => {
    let dk = keys.get(campaignId);
    if (!dk) keys.set(campaignId, (dk = newDataKey(campaignId)));
    return dk;
  };
  return {
    keys,
    fail,
    async prepare(ids) {
      for (const id of ids) {
        if (fail.has(id)) throw new Error(`the data key of campaign ${id} cannot be had`);
        keyOf(id);
      }
    },
    sealer: { seal: (campaignId, code) => sealCode(keyOf(campaignId), code) },
    open: (e) => ('code' in e ? e.code : keys.has(e.campaignId) ? openCode(keys.get(e.campaignId)!, e.sealedCode) : null),
  };
}
