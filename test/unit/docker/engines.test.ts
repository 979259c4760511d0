import test from 'ava';
import { DockerodeClient } from '../../../src/docker/dockerode-client.js';
import { listedContainer, localInfo } from '../../../src/docker/local-api.js';
import { runtimeFor } from '../../../src/run/runtime-choice.js';
import { dockerChecks } from '../../../src/doctor/checks.js';
import { DESKTOP, DockerDouble, ENGINES, ROOTLESS, type EngineProfile } from '../../helpers/docker-double.js';
import { daemonOn, FakeWirer } from '../../helpers/fake-wirer.js';
import { tempDir } from '../../helpers/fixtures.js';

const ID = 'd'.repeat(64);

async function double(t: { teardown(fn: () => Promise<void>): void }, profile: EngineProfile): Promise<{ docker: DockerDouble; client: DockerodeClient }> {
  const docker = await new DockerDouble(profile).start();
  t.teardown(() => docker.stop());
  return { docker, client: new DockerodeClient({ host: `unix://${docker.socket}`, from: 'test' }) };
}

const until = async (what: () => boolean) => { for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 10)); };

for (const profile of ENGINES) {
  test(`Docker ${profile.name}: the engine's facts, a container, its events, and no request pinned to an API version`, async (t) => {
    const { docker, client } = await double(t, profile);
    const facts = await client.engine();
    t.like(facts, { version: profile.version, apiVersion: profile.apiVersion, rootless: false, firewallBackend: profile.firewallBackend });
    docker.add({ id: ID, name: 'web', labels: { 'dockcni.networks': 'front' }, running: true, pid: 4242, startedAt: '2026-12-01T00:00:00Z', networkMode: 'none' });
    t.like(await client.inspect(ID), { id: ID, name: 'web', pid: 4242, running: true, networkMode: 'none', hostsPath: `/var/lib/docker/containers/${ID}/hosts` });
    t.deepEqual((await client.listByLabel('dockcni.networks')).map((c) => c.id), [ID]);
    const events: { id: string; action: string; labels: Record<string, string> }[] = [];
    const subscription = await client.events(undefined, (e) => events.push({ id: e.id, action: e.action, labels: { ...e.labels } }));
    await until(() => docker.subscribers > 0);
    docker.emit(ID, 'start');
    await until(() => events.length > 0);
    subscription.close();
    t.like(events[0], { id: ID, action: 'start', labels: { 'dockcni.networks': 'front' } }, profile.legacyEventFields ? 'read from Actor.ID and Action, not the legacy fields' : 'API 1.52 events have no status, id or from');
    t.deepEqual(docker.paths.filter((p) => /^\/v\d/.test(p)), [], 'every request at the engine\'s own API version: 29.0–29.2 refuse clients pinned below 1.44');
  });

  test(`Docker ${profile.name}: the daemon wires a labelled container it starts and unwires it when it dies`, async (t) => {
    const { docker, client } = await double(t, profile);
    docker.add({ id: ID, name: 'web', labels: { 'dockcni.networks': 'front' }, running: true, pid: 4242, startedAt: '2026-12-01T00:00:00Z', networkMode: 'none' });
    const wirer = new FakeWirer();
    let reconciled = false;
    const { daemon, running } = daemonOn(client, wirer, async () => { reconciled = true; });
    await until(() => reconciled && docker.subscribers > 0);
    docker.emit(ID, 'start');
    await until(() => wirer.wired.length > 0);
    t.like(wirer.wired[0]?.target, { containerId: ID, name: 'web', pid: 4242, networkMode: 'none', origin: 'daemon' });
    t.is(wirer.wired[0]?.request.networks[0]?.network, 'front');
    docker.emit(ID, 'die');
    await until(() => wirer.unwired.length > 0);
    t.deepEqual(wirer.unwired, [ID]);
    await daemon.stop();
    await running;
  });

  test(`Docker ${profile.name}: the runtime's own calls (the container list while dockerd creates it, /info) work on the API floor, unpinned`, async (t) => {
    const { docker } = await double(t, profile);
    docker.add({ id: ID, name: 'web', labels: { 'dockcni.networks': 'front' }, running: false, pid: 0, startedAt: '', networkMode: 'none' });
    t.like(await listedContainer(docker.socket, ID, 2000), { id: ID, name: 'web', networkMode: 'none', labels: { 'dockcni.networks': 'front' } });
    t.deepEqual(Object.keys((await localInfo(docker.socket, 2000)).runtimes), ['runc']);
    t.deepEqual(docker.paths.filter((p) => /^\/v\d/.test(p)), []);
  });
}

for (const profile of [ROOTLESS, DESKTOP]) {
  test(`Docker ${profile.name}: refused with one message and what to do, by the daemon, run and doctor`, async (t) => {
    const { docker, client } = await double(t, profile);
    const wirer = new FakeWirer();
    const { running, log } = daemonOn(client, wirer, async () => undefined);
    const refused = await t.throwsAsync(running);
    t.is((refused as { code?: string } | undefined)?.code, 'docker-unsupported');
    const message = profile === ROOTLESS ? /runs rootless: its containers live in RootlessKit's namespaces/ : /Docker Desktop runs containers in a VM/;
    t.regex(refused?.message ?? '', message);
    t.regex(log.text(), /error refusing to wire containers of this Docker engine/);
    t.is(docker.subscribers, 0, 'no event followed');
    await t.throwsAsync(runtimeFor({ sandbox: true, name: 'dockcni', explicit: false, flags: { timeout: 120, podNamespace: 'default' }, dockerHost: `unix://${docker.socket}` }), { message });
    const dir = await tempDir(t);
    const doctor = await dockerChecks({ docker: client, paths: { confDir: dir, cniPath: [dir], cacheDir: dir, stateDir: dir, runDir: dir } });
    t.false(doctor.reachable, 'doctor checks nothing that needs Docker beside it');
    t.like(doctor.results.find((c) => c.check === 'docker'), { status: 'fail' });
    t.regex(doctor.results.find((c) => c.check === 'docker')?.found ?? '', message);
  });
}
