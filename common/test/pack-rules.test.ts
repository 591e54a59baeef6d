import { describe, expect, it } from 'vitest';
import { type ChangeRequest, decideChange, type PackStatus, UNDO_WINDOW_MS } from '../src/pack-rules.ts';

const t0 = Date.UTC(2026, 10, 1);
const req = (op: ChangeRequest['op'], over: Partial<ChangeRequest> = {}): ChangeRequest => ({
  op,
  clientId: 'c1',
  location: 'L1',
  role: 'pharmacy',
  at: t0,
  ...over,
});
const supplied: PackStatus = { state: 'SUPPLIED', by: { clientId: 'c1', location: 'L1' }, at: t0 };

describe('decideChange', () => {
  it('decommissions an active pack', () => {
    expect(decideChange({ state: 'ACTIVE' }, req('supply'), undefined)).toMatchObject({
      accepted: true,
      state: 'SUPPLIED',
    });
  });

  it('answers a repeat at the same place without an alert, elsewhere with A7, another state with A24', () => {
    expect(decideChange(supplied, req('supply'), undefined)).toMatchObject({
      accepted: false,
      code: 'ALREADY_IN_STATE_HERE',
    });
    expect(decideChange(supplied, req('supply'), undefined).alert).toBeUndefined();
    expect(decideChange(supplied, req('supply', { location: 'L2' }), undefined)).toMatchObject({
      code: 'ALREADY_DECOMMISSIONED',
      alert: 'A7',
    });
    expect(decideChange(supplied, req('destroy'), undefined)).toMatchObject({ code: 'NOT_ACTIVE', alert: 'A24' });
  });

  it('keeps operations to the roles that may do them', () => {
    expect(decideChange({ state: 'ACTIVE' }, req('export'), undefined)).toMatchObject({
      accepted: false,
      code: 'ROLE_NOT_ALLOWED',
    });
    expect(decideChange({ state: 'ACTIVE' }, req('export', { role: 'wholesaler' }), undefined)).toMatchObject({
      accepted: true,
      state: 'EXPORTED',
    });
    expect(decideChange({ state: 'ACTIVE' }, req('check-out', { role: 'parallel-distributor' }), undefined).state).toBe(
      'CHECKED_OUT',
    );
  });

  it('refuses to decommission an inactive pack', () => {
    expect(decideChange({ state: 'ACTIVE' }, req('supply'), 'RECALLED')).toMatchObject({
      accepted: false,
      code: 'PACK_INACTIVE',
    });
  });

  describe('undo (Art. 13)', () => {
    it('returns a pack to active for the same client and location within 10 days', () => {
      expect(decideChange(supplied, req('undo', { at: t0 + UNDO_WINDOW_MS }), undefined)).toMatchObject({
        accepted: true,
        state: 'ACTIVE',
      });
    });
    it('refuses another client or location', () => {
      expect(decideChange(supplied, req('undo', { clientId: 'c2' }), undefined)).toMatchObject({
        code: 'UNDO_OTHER_CLIENT',
        alert: 'A24',
      });
      expect(decideChange(supplied, req('undo', { location: 'L2' }), undefined)).toMatchObject({
        code: 'UNDO_OTHER_CLIENT',
      });
    });
    it('refuses after 240 hours', () => {
      expect(decideChange(supplied, req('undo', { at: t0 + UNDO_WINDOW_MS + 1 }), undefined)).toMatchObject({
        code: 'UNDO_TOO_LATE',
      });
    });
    it('refuses for stolen or destroyed packs, and for expired, recalled or withdrawn ones', () => {
      expect(decideChange({ ...supplied, state: 'STOLEN' }, req('undo'), undefined)).toMatchObject({
        code: 'UNDO_STATE_FINAL',
      });
      expect(decideChange({ ...supplied, state: 'DESTROYED' }, req('undo'), undefined)).toMatchObject({
        code: 'UNDO_STATE_FINAL',
      });
      for (const reason of ['EXPIRED', 'RECALLED', 'WITHDRAWN']) {
        expect(decideChange(supplied, req('undo'), reason)).toMatchObject({ accepted: false, code: 'PACK_INACTIVE' });
      }
    });
    it('has nothing to undo on an active pack', () => {
      expect(decideChange({ state: 'ACTIVE' }, req('undo'), undefined)).toMatchObject({
        code: 'UNDO_NOT_DECOMMISSIONED',
      });
    });
  });
});
