// Drives the official Node device SDKs, unchanged, against the emulator:
//   STAGE=register: azure-iot-provisioning-device + -http +
//     azure-iot-security-symmetric-key register REG_ID through an enrollment
//     group with the key derived from GROUP_KEY; then azure-iot-device +
//     azure-iot-device-http send TELEMETRY_COUNT messages to the assigned hub
//     with the same key. Prints "result <json>" with the registration result.
//   STAGE=registry: azure-iothub Registry gets DEVICE_ID from the hub named
//     HUB_HOST, finds it with a paged device query, deletes it, and checks a
//     second get is a 404.
// The emulator runs on port 443 of loopback addresses (the SDKs cannot take a
// port); NODE_EXTRA_CA_CERTS trusts its CA. Any failure exits 1.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http: ProvisioningHttp } = require('azure-iot-provisioning-device-http');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const { Http: DeviceHttp } = require('azure-iot-device-http');
const { Registry } = require('azure-iothub');

const env = process.env;
const ok = (step) => console.log('ok ' + step);

// The derivation of the DPS docs: HMAC-SHA256(groupKey, registrationId).
function deriveKey(groupKey, registrationId) {
  return crypto.createHmac('SHA256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');
}

async function register() {
  const regId = env.REG_ID;
  const deviceKey = deriveKey(env.GROUP_KEY, regId);
  const security = new SymmetricKeySecurityClient(regId, deviceKey);
  const client = ProvisioningDeviceClient.create(env.DPS_DEVICE_ENDPOINT, env.DPS_ID_SCOPE, new ProvisioningHttp(), security);
  client.setProvisioningPayload({ modelId: 'dtmi:dpsconsole:interop;1' });
  const result = await client.register();
  assert.equal(result.status, 'assigned', JSON.stringify(result));
  assert.equal(result.deviceId, regId);
  assert.ok(result.assignedHub, 'an assigned hub');
  ok('register');

  const cs = `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${deviceKey}`;
  const device = Client.fromConnectionString(cs, DeviceHttp);
  await device.open();
  const n = Number(env.TELEMETRY_COUNT);
  for (let i = 1; i <= n; i++) {
    const msg = new Message(JSON.stringify({ seq: i }));
    msg.messageId = `${regId}-${i}`;
    msg.contentType = 'application/json';
    msg.properties.add('source', 'node-interop');
    await device.sendEvent(msg);
  }
  await device.close();
  ok('telemetry');
  console.log('result ' + JSON.stringify(result));
}

async function registry() {
  const hubCs = [env.IOTHUB_CONNECTION_STRING_1, env.IOTHUB_CONNECTION_STRING_2]
    .find((cs) => cs && cs.includes(`HostName=${env.HUB_HOST};`));
  assert.ok(hubCs, 'a connection string for hub ' + env.HUB_HOST);
  const reg = Registry.fromConnectionString(hubCs);
  const got = await reg.get(env.DEVICE_ID);
  assert.equal(got.responseBody.deviceId, env.DEVICE_ID);
  assert.equal(got.responseBody.authentication.type, 'sas');
  ok('registry get');
  const query = reg.createQuery('SELECT * FROM devices', 1);
  const page = await query.nextAsTwin();
  assert.equal(page.result.length, 1, 'one twin per page');
  assert.equal(page.result[0].deviceId, env.DEVICE_ID);
  assert.equal(query.hasMoreResults, false, 'no continuation after the only device');
  ok('registry query');
  await reg.delete(env.DEVICE_ID);
  ok('registry delete');
  await assert.rejects(reg.get(env.DEVICE_ID), (err) => {
    assert.equal(err.response && err.response.statusCode, 404, String(err));
    return true;
  });
  ok('registry 404');
}

(env.STAGE === 'registry' ? registry() : register()).catch((err) => {
  console.error('FAILED:', err && err.stack ? err.stack : err);
  if (err && err.responseBody) console.error('response body:', err.responseBody);
  process.exit(1);
});
