import { planAddressUpdates } from '../../workflows/addresses';

const pod = (node: string, host: string, role: string | null = null) => ({ node, pod: node, host, port: 5432, role });
const reg = (node: string, host: string, role: string | null = null, port = 5432) => ({ node, host, port, role });

test('only nodes whose address or role moved are updated, over what the catalog held', () => {
  const plan = planAddressUpdates(
    [pod('dn-2', '10.0.0.12', 'replica'), pod('dn-1', '10.0.0.21', 'primary'), pod('dn-3', '10.0.0.13', 'replica')],
    [reg('dn-1', '10.0.0.11', 'primary'), reg('dn-2', '10.0.0.12', 'replica'), reg('dn-3', '10.0.0.13', 'primary')],
  );
  expect(plan).toEqual({
    updates: [
      { node: 'dn-1', host: '10.0.0.21', port: 5432, role: 'primary', previous: { host: '10.0.0.11', port: 5432, role: 'primary' } },
      { node: 'dn-3', host: '10.0.0.13', port: 5432, role: 'replica', previous: { host: '10.0.0.13', port: 5432, role: 'primary' } },
    ],
    unchanged: ['dn-2'],
    unregistered: [],
    withoutPod: [],
  });
});

test('everything matching is a no-op', () => {
  const plan = planAddressUpdates([pod('a', '10.0.0.1')], [reg('a', '10.0.0.1')]);
  expect(plan.updates).toEqual([]);
  expect(plan.unchanged).toEqual(['a']);
});

test('pods the catalog does not know, and catalog nodes without a pod, are reported and left alone', () => {
  const plan = planAddressUpdates([pod('a', '10.0.0.1'), pod('new', '10.0.0.9')], [reg('a', '10.0.0.1'), reg('old', '10.0.0.7')]);
  expect(plan).toMatchObject({ updates: [], unregistered: ['new'], withoutPod: ['old'] });
});

test('a catalog without roles keeps them; a pod without a role label keeps the catalog role', () => {
  expect(planAddressUpdates([pod('a', '10.0.0.2', 'primary')], [reg('a', '10.0.0.1', null)]).updates[0]!.role).toBeNull();
  expect(planAddressUpdates([pod('a', '10.0.0.2', null)], [reg('a', '10.0.0.1', 'primary')]).updates[0]!.role).toBe('primary');
});

test('a port change is an update', () => {
  expect(planAddressUpdates([pod('a', '10.0.0.1')], [reg('a', '10.0.0.1', null, 5433)]).updates).toHaveLength(1);
});
