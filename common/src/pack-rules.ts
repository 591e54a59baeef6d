/**
 * The pack state machine and the rules of Delegated Regulation (EU) 2016/161 for changing it
 * (docs/domain.md §2–4): who may decommission how, what a repeated request means, and when an undo
 * (Art. 13) is allowed. Pure; the hub decides with these rules, and the verifier nodes check
 * with the same rules before they ask.
 */

const OPERATIONS = {
  supply: 'SUPPLIED',
  destroy: 'DESTROYED',
  export: 'EXPORTED',
  sample: 'SAMPLE',
  'free-sample': 'FREE_SAMPLE',
  lock: 'LOCKED',
  stolen: 'STOLEN',
  'check-out': 'CHECKED_OUT',
} as const;
export type Operation = keyof typeof OPERATIONS | 'undo';
export type DecommissionedState = (typeof OPERATIONS)[keyof typeof OPERATIONS];
export type PackState = 'ACTIVE' | DecommissionedState;

export const ROLES = ['pharmacy', 'hospital', 'wholesaler', 'parallel-distributor'] as const;
/** The roles of the clients that act on packs (pharmacy software, wholesalers…), as their tokens carry them. */
export type Role = (typeof ROLES)[number];

/** Which role may set which state (and undo it). */
const ROLE_OPERATIONS: Record<Role, readonly (keyof typeof OPERATIONS)[]> = {
  pharmacy: ['supply', 'destroy', 'sample', 'free-sample', 'lock', 'stolen'],
  hospital: ['supply', 'destroy', 'sample', 'free-sample', 'lock', 'stolen'],
  wholesaler: ['supply', 'export', 'destroy', 'sample', 'free-sample', 'lock', 'stolen'],
  'parallel-distributor': ['check-out', 'export', 'destroy', 'lock', 'stolen'],
};

export const UNDO_WINDOW_MS = 240 * 3600 * 1000;
const NOT_UNDOABLE = new Set<PackState>(['STOLEN', 'DESTROYED']);

export function isOperation(value: string): value is Operation {
  return value === 'undo' || Object.hasOwn(OPERATIONS, value);
}

/** A pack's current state and who set it. */
export interface PackStatus {
  state: PackState;
  by?: { clientId: string; location: string };
  /** Epoch ms of the decommissioning. */
  at?: number;
}

export interface ChangeRequest {
  op: Operation;
  clientId: string;
  location: string;
  role: Role;
  at: number;
}

export type ChangeCode =
  | 'CHANGED'
  | 'ALREADY_IN_STATE_HERE'
  | 'ALREADY_DECOMMISSIONED'
  | 'NOT_ACTIVE'
  | 'PACK_INACTIVE'
  | 'ROLE_NOT_ALLOWED'
  | 'UNDO_NOT_DECOMMISSIONED'
  | 'UNDO_STATE_FINAL'
  | 'UNDO_OTHER_CLIENT'
  | 'UNDO_TOO_LATE';

export interface ChangeDecision {
  accepted: boolean;
  code: ChangeCode;
  /** The state after the request (unchanged when refused). */
  state: PackState;
  /** A7 or A24 when the refusal is suspicious; none for a repeat at the same place. */
  alert?: 'A7' | 'A24';
  detail: string;
}

/**
 * Decides a state change. `inactive` is the product/batch/expiry reason that makes the pack
 * inactive, if any.
 */
export function decideChange(current: PackStatus, req: ChangeRequest, inactive: string | undefined): ChangeDecision {
  const keep = (code: ChangeCode, detail: string, alert?: 'A7' | 'A24'): ChangeDecision => ({
    accepted: false,
    code,
    state: current.state,
    detail,
    ...(alert ? { alert } : {}),
  });
  if (req.op === 'undo') return decideUndo(current, req, inactive, keep);
  if (!ROLE_OPERATIONS[req.role].includes(req.op))
    return keep('ROLE_NOT_ALLOWED', `a ${req.role} may not ${req.op} a pack`);
  const target = OPERATIONS[req.op];
  if (inactive)
    return keep('PACK_INACTIVE', `the pack is ${inactive.toLowerCase()}; it cannot be decommissioned as ${target}`);
  if (current.state === 'ACTIVE')
    return { accepted: true, code: 'CHANGED', state: target, detail: `the pack is now ${target}` };
  const here = current.by?.clientId === req.clientId && current.by.location === req.location;
  if (current.state === target && here) return keep('ALREADY_IN_STATE_HERE', `already ${target.toLowerCase()} here`);
  if (current.state === target)
    return keep('ALREADY_DECOMMISSIONED', `already ${target.toLowerCase()} elsewhere`, 'A7');
  return keep('NOT_ACTIVE', `the pack is ${current.state}, not active`, 'A24');
}

function decideUndo(
  current: PackStatus,
  req: ChangeRequest,
  inactive: string | undefined,
  keep: (code: ChangeCode, detail: string, alert?: 'A7' | 'A24') => ChangeDecision,
): ChangeDecision {
  if (current.state === 'ACTIVE')
    return keep('UNDO_NOT_DECOMMISSIONED', 'the pack is active; there is nothing to undo');
  if (NOT_UNDOABLE.has(current.state)) return keep('UNDO_STATE_FINAL', `${current.state} cannot be undone`, 'A24');
  if (current.by?.clientId !== req.clientId || current.by.location !== req.location) {
    return keep('UNDO_OTHER_CLIENT', 'only the client and location that decommissioned the pack may undo it', 'A24');
  }
  if (current.at === undefined || req.at - current.at > UNDO_WINDOW_MS) {
    return keep('UNDO_TOO_LATE', 'more than 10 days (240 h) have passed since the decommissioning', 'A24');
  }
  if (inactive) return keep('PACK_INACTIVE', `the pack is ${inactive.toLowerCase()}; it cannot return to active`);
  return { accepted: true, code: 'CHANGED', state: 'ACTIVE', detail: 'the pack is active again' };
}

export type InactiveReason = 'EXPIRED' | 'RECALLED' | 'WITHDRAWN';

/** Status is hierarchical: the product, then the batch, then the expiry date (`today` is YYYY-MM-DD). */
export function inactiveReasonOf(
  productStatus: string,
  batch: { status: string; expiryDate: string } | undefined,
  today: string,
): InactiveReason | undefined {
  if (productStatus === 'WITHDRAWN') return 'WITHDRAWN';
  if (batch?.status === 'RECALLED') return 'RECALLED';
  if (batch?.status === 'WITHDRAWN') return 'WITHDRAWN';
  if (batch && batch.expiryDate < today) return 'EXPIRED';
  return undefined;
}
