import type { RunApproval } from '../model/status';

/** Who the router's own approval steps are by. */
export const ROUTER = 'router';

/** An approval step of a status update (requested, approved, released...), by the router unless `fields` say otherwise. */
export function approval(event: RunApproval['event'], fields: Partial<RunApproval> = {}): RunApproval {
  return { event, by: ROUTER, description: null, type: null, approvers: [], parked: null, ...fields };
}
