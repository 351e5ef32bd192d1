// Registers a device through a group with azure-iot-provisioning-device over
// MQTT (azure-iot-provisioning-device-mqtt), unchanged, against the
// emulator's MQTT listener on port 8883 (the SDK's fixed port).
'use strict';
const assert = require('node:assert/strict');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt } = require('azure-iot-provisioning-device-mqtt');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

async function main() {
  const host = process.env.DPS_MQTT_ENDPOINT.replace(/:8883$/, '');
  const rid = process.env.REGISTRATION_ID;
  const security = new SymmetricKeySecurityClient(rid, process.env.DEVICE_KEY);
  const client = ProvisioningDeviceClient.create(host, process.env.DPS_ID_SCOPE, new Mqtt(), security);
  client.setProvisioningPayload({ modelId: 'dtmi:dpsconsole:test;1' });
  const result = await client.register();
  assert.equal(result.registrationId, rid);
  assert.ok(result.assignedHub, 'assigned hub');
  console.log('ok registered over MQTT: ' + JSON.stringify({ assignedHub: result.assignedHub, deviceId: result.deviceId, status: result.status }));

  // A wrong key fails with 401 from the service.
  const bad = ProvisioningDeviceClient.create(host, process.env.DPS_ID_SCOPE, new Mqtt(),
    new SymmetricKeySecurityClient(rid + '-x', Buffer.alloc(32, 1).toString('base64')));
  await assert.rejects(bad.register(), (err) => {
    console.log('ok wrong key rejected: ' + err.name);
    return true;
  });
}

main().catch((err) => {
  console.error('FAIL: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
