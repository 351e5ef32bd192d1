// Drives the official Node device SDK over MQTT (azure-iot-device with
// azure-iot-device-mqtt) and the service SDK azure-iothub, unchanged,
// against the emulated hub: the device reads its twin, reports properties,
// gets a desired change, and answers a direct method the service invokes.
// DEVICE_CS is the device's connection string, TWIN_HUB_CS the hub's. Each
// step prints "ok <step>"; any failure exits 1 with the reason. Without
// azure-iot-device-mqtt installed it prints "skip ..." and exits 0.
'use strict';
const assert = require('node:assert/strict');
const { Registry, Client: ServiceClient } = require('azure-iothub');
const { Client } = require('azure-iot-device');

let Mqtt;
try {
  ({ Mqtt } = require('azure-iot-device-mqtt'));
} catch (err) {
  console.log('skip azure-iot-device-mqtt is not installed');
  process.exit(0);
}

const env = process.env;
const ok = (step) => console.log('ok ' + step);
const within = (ms, what, promise) => Promise.race([promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error(what + ' did not happen within ' + ms + ' ms')), ms))]);

async function main() {
  const reg = Registry.fromConnectionString(env.TWIN_HUB_CS);
  const service = ServiceClient.fromConnectionString(env.TWIN_HUB_CS);
  const device = Client.fromConnectionString(env.DEVICE_CS, Mqtt);
  const id = env.DEVICE_ID;
  await device.open();
  assert.equal((await reg.get(id)).responseBody.connectionState, 'Connected');
  ok('connected over MQTT');

  const twin = await device.getTwin();
  assert.equal(twin.properties.desired.$version, 1);
  assert.equal(twin.properties.reported.$version, 1);
  ok('device getTwin');

  await new Promise((resolve, reject) => twin.properties.reported.update({ fw: '1.0', net: { rssi: -60 } }, (err) => (err ? reject(err) : resolve())));
  let seen = (await reg.getTwin(id)).responseBody;
  assert.equal(seen.properties.reported.fw, '1.0');
  assert.equal(seen.properties.reported.$version, 2);
  ok('reported properties reach the service');

  const desired = new Promise((resolve) => twin.on('properties.desired.interval', (v) => { if (v === 7) resolve(v); }));
  await seen.update({ properties: { desired: { interval: 7 } } });
  await within(10000, 'the desired change', desired);
  assert.equal(twin.properties.desired.interval, 7);
  assert.equal(twin.properties.desired.$version, 2);
  ok('desired change reaches the device');

  device.onDeviceMethod('reboot', (request, response) => {
    assert.deepEqual(request.payload, { delay: 1 });
    response.send(200, { rebooting: true, in: request.payload.delay });
  });
  await new Promise((r) => setTimeout(r, 200)); // onDeviceMethod subscribes in the background
  const res = await service.invokeDeviceMethod(id, { methodName: 'reboot', payload: { delay: 1 }, responseTimeoutInSeconds: 10 });
  assert.equal(res.result.status, 200);
  assert.deepEqual(res.result.payload, { rebooting: true, in: 1 });
  ok('direct method answered by the device');

  await device.close();
  await assert.rejects(service.invokeDeviceMethod(id, { methodName: 'reboot', responseTimeoutInSeconds: 5 }), (err) => {
    assert.equal(err.response && err.response.statusCode, 404, String(err));
    return true;
  });
  ok('method after close is 404');
}

main().then(() => process.exit(0)).catch((err) => {
  console.error('FAILED:', err && err.stack ? err.stack : err);
  if (err && err.responseBody) console.error('response body:', err.responseBody);
  process.exit(1);
});
