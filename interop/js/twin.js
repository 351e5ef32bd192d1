// Drives the official Node service SDK azure-iothub, unchanged, against the
// emulated hub named by TWIN_HUB_CS: Registry.getTwin, Twin.update (merge,
// null removes, ETags), Registry.updateTwin with a stale ETag, and
// Client.invokeDeviceMethod on a device that is not connected. DEVICE_ID
// is a device in that hub with the tag fleet=demo. Each step prints
// "ok <step>"; any failure exits 1 with the reason.
'use strict';
const assert = require('node:assert/strict');
const { Registry, Client } = require('azure-iothub');

const env = process.env;
const ok = (step) => console.log('ok ' + step);

async function main() {
  const reg = Registry.fromConnectionString(env.TWIN_HUB_CS);
  const id = env.DEVICE_ID;

  const twin = (await reg.getTwin(id)).responseBody;
  assert.equal(twin.deviceId, id);
  assert.equal(twin.tags.fleet, 'demo');
  assert.equal(twin.properties.desired.$version, 1);
  assert.equal(twin.properties.reported.$version, 1);
  assert.ok(twin.etag && twin.etag !== '*', 'a twin etag');
  const firstEtag = twin.etag;
  ok('getTwin');

  await twin.update({ tags: { site: 'oslo' }, properties: { desired: { interval: 5, net: { ssid: 'a', band: 5 } } } });
  assert.equal(twin.tags.site, 'oslo');
  assert.equal(twin.tags.fleet, 'demo', 'tags merge');
  assert.equal(twin.properties.desired.interval, 5);
  assert.equal(twin.properties.desired.$version, 2);
  assert.notEqual(twin.etag, firstEtag, 'a new etag');
  ok('Twin.update');

  await twin.update({ properties: { desired: { interval: null, net: { band: null } } } });
  assert.ok(!('interval' in twin.properties.desired), 'null removes interval: ' + JSON.stringify(twin.properties.desired));
  assert.deepEqual(twin.properties.desired.net, { ssid: 'a' });
  assert.equal(twin.properties.desired.$version, 3);
  const again = (await reg.getTwin(id)).responseBody;
  assert.deepEqual(again.properties.desired, twin.properties.desired, 'getTwin shows the update');
  ok('null removes a property');

  await assert.rejects(reg.updateTwin(id, { tags: { lost: true } }, firstEtag), (err) => {
    assert.equal(err.constructor.name, 'InvalidEtagError', String(err));
    assert.equal(err.response.statusCode, 412);
    return true;
  });
  assert.ok(!('lost' in (await reg.getTwin(id)).responseBody.tags), 'a refused update changes nothing');
  ok('stale etag is 412');

  await assert.rejects(reg.getTwin('no-such-device'), (err) => {
    assert.equal(err.constructor.name, 'DeviceNotFoundError', String(err));
    return true;
  });
  ok('missing twin is DeviceNotFound');

  const client = Client.fromConnectionString(env.TWIN_HUB_CS);
  await assert.rejects(client.invokeDeviceMethod(id, { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 5 }), (err) => {
    assert.equal(err.response && err.response.statusCode, 404, String(err));
    assert.match(err.responseBody, /DeviceNotOnline/);
    return true;
  });
  ok('method on a disconnected device is 404 DeviceNotOnline');
}

main().catch((err) => {
  console.error('FAILED:', err && err.stack ? err.stack : err);
  if (err && err.responseBody) console.error('response body:', err.responseBody);
  process.exit(1);
});
