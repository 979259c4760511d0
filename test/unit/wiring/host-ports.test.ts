import { createServer, type Server } from 'node:net';
import test from 'ava';
import { hostListener, hostSockets, overlaps } from '../../../src/wiring/host-ports.js';

const listen = (port: number, host: string) => new Promise<Server>((resolve) => { const s = createServer(); s.listen(port, host, () => resolve(s)); });

test('a listening socket is found with its address, and its process named', async (t) => {
  const v4 = await listen(0, '127.0.0.1');
  const v6 = await listen(0, '::1');
  t.teardown(() => { v4.close(); v6.close(); });
  const p4 = (v4.address() as { port: number }).port;
  const p6 = (v6.address() as { port: number }).port;
  const sockets = hostSockets();
  t.true(sockets.some((s) => s.protocol === 'tcp' && s.address === '127.0.0.1' && s.port === p4));
  t.true(sockets.some((s) => s.protocol === 'tcp' && s.address === '::1' && s.port === p6));
  t.is(hostListener({ hostPort: p4, containerPort: 80, protocol: 'tcp' }), `pid ${process.pid} (node) on 127.0.0.1:${p4}/tcp`);
  t.is(hostListener({ hostPort: p4, containerPort: 80, protocol: 'udp' }), undefined, 'another protocol');
  t.is(hostListener({ hostPort: p4, containerPort: 80, protocol: 'tcp', hostIP: '10.9.9.9' }), undefined, 'another address');
});

test('wildcards overlap everything of the same port and protocol', (t) => {
  const at = (address: string | undefined, port = 80, protocol = 'tcp') => ({ protocol, port, address });
  t.true(overlaps(at(undefined), at('127.0.0.1')));
  t.true(overlaps(at('0.0.0.0'), at('10.0.0.1')));
  t.true(overlaps(at('::'), at('::1')));
  t.true(overlaps(at('127.0.0.1'), at('::ffff:127.0.0.1')));
  t.false(overlaps(at('127.0.0.1'), at('127.0.0.2')));
  t.false(overlaps(at(undefined, 80), at(undefined, 81)));
  t.false(overlaps(at(undefined, 80, 'tcp'), at(undefined, 80, 'udp')));
});
