package emulator

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/keys"
)

// TestMQTTHubConnectAuth: a hub checks user name, client id and SAS at
// CONNECT and refuses anything wrong with return code 5 (never CONNACK 0
// for a bad token); it speaks MQTT 3.1.1 only.
func TestMQTTHubConnectAuth(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	const id = "auth-dev"
	k := hubDeviceFor(t, e, 1, id)
	hubDeviceFor(t, e, 2, "hub2-only")
	host := e.hubs[0].HostName
	user, good := hubCredentials(e, 1, id, k)
	sign := func(sr string, key keys.Key, skn string, exp time.Duration) string {
		return keys.SignSAS(sr, key, skn, time.Now().Add(exp))
	}
	cases := []struct {
		name string
		pk   packets.Packet
		want byte
	}{
		{"good token", connectPacket(id, user, good), 0},
		{"good token, port left out of the hub name", connectPacket(id, strings.Split(host, ":")[0]+"/"+id+"/?api-version=2021-04-12", good), 0},
		{"token of the hub's policy", connectPacket(id, user, sign(host+"/devices/"+id, e.hubs[0].key, hubPolicy, time.Hour)), 0},
		{"wrong key", connectPacket(id, user, sign(host+"/devices/"+id, keys.GenerateKey(), "", time.Hour)), 5},
		{"device key with a policy name", connectPacket(id, user, sign(host+"/devices/"+id, k, hubPolicy, time.Hour)), 5},
		{"another policy", connectPacket(id, user, sign(host+"/devices/"+id, e.hubs[0].key, "registryRead", time.Hour)), 5},
		{"expired token", connectPacket(id, user, sign(host+"/devices/"+id, k, "", -time.Minute)), 5},
		{"token for another device", connectPacket(id, user, sign(host+"/devices/other", k, "", time.Hour)), 5},
		{"no password", connectPacket(id, user, ""), 5},
		{"junk password", connectPacket(id, user, "hello"), 5},
		{"client id is not the device", connectPacket("someone-else", user, good), 5},
		{"user name names another hub", connectPacket(id, e.hubs[1].HostName+"/"+id+"/?api-version=2021-04-12", good), 5},
		{"unknown device", connectPacket("ghost", host+"/ghost/?api-version=2021-04-12", sign(host+"/devices/ghost", k, "", time.Hour)), 5},
		{"device of the other hub", connectPacket("hub2-only", host+"/hub2-only/?api-version=2021-04-12", sign(host+"/devices/hub2-only", k, "", time.Hour)), 5},
		{"DPS user name on a hub", connectPacket(id, "0ne00000000/registrations/"+id+"/api-version=2019-03-31", good), 5},
		{"MQTT 3.1", func() packets.Packet {
			pk := connectPacket(id, user, good)
			pk.ProtocolVersion, pk.Connect.ProtocolName = 3, []byte("MQIsdp")
			return pk
		}(), connackBadProtocol},
		// What mochi itself rejects before the hook must still get a 3.1.1
		// return code (0-5), not MQTT 5's 0x80/0x82.
		{"password flag with an empty password", func() packets.Packet {
			pk := connectPacket(id, user, "")
			pk.Connect.PasswordFlag = true
			return pk
		}(), 5},
		{"password without the user name flag", func() packets.Packet {
			pk := connectPacket(id, "", good)
			pk.Connect.UsernameFlag = false
			return pk
		}(), 5},
		{"protocol level 3 named MQTT", func() packets.Packet {
			pk := connectPacket(id, user, good)
			pk.ProtocolVersion = 3
			return pk
		}(), connackBadProtocol},
		{"empty client id without a clean session", func() packets.Packet {
			pk := connectPacket("", user, good)
			pk.Connect.Clean = false
			return pk
		}(), 2},
	}
	for _, c := range cases {
		m := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
		if err := m.send(c.pk); err != nil {
			t.Fatal(err)
		}
		ack := m.expect(packets.Connack, 10*time.Second)
		if ack.ReasonCode != c.want {
			t.Errorf("%s: CONNACK return code %d, want %d", c.name, ack.ReasonCode, c.want)
		}
		if c.want != 0 {
			m.expectClosed(5 * time.Second)
		}
	}
}

// TestMQTTHubTokenExpiry: IoT Hub ends a connection once its token
// expires; the SDKs reconnect with a new one.
func TestMQTTHubTokenExpiry(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	const id = "expiring-dev"
	k := hubDeviceFor(t, e, 1, id)
	user, _ := hubCredentials(e, 1, id, k)
	host := e.hubs[0].HostName
	m := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if code := m.connect(connectPacket(id, user, keys.SignSAS(host+"/devices/"+id, k, "", time.Now().Add(3*time.Second)))); code != 0 {
		t.Fatalf("CONNECT: return code %d", code)
	}
	time.Sleep(3100 * time.Millisecond)
	m.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	m.expectClosed(5 * time.Second)
}

// TestMQTTRefusedPublishNeverAcked: a publish the hub refuses closes the
// connection unacknowledged, and no later session of the device (clean
// session off, as the C and Python SDKs connect) gets a PUBACK for it.
func TestMQTTRefusedPublishNeverAcked(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	const id = "refused-dev"
	k := hubDeviceFor(t, e, 1, id)
	user, pw := hubCredentials(e, 1, id, k)
	persistent := func(pk packets.Packet) packets.Packet { pk.Connect.Clean = false; return pk }

	// A wrong key: refused at CONNECT, so the publish never counts.
	bad := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	_, wrong := hubCredentials(e, 1, id, keys.GenerateKey())
	bad.send(persistent(connectPacket(id, user, wrong)))
	bad.send(publishPacket("devices/"+id+"/messages/events/", 1, 7, "wrong key"))
	if ack := bad.expect(packets.Connack, 10*time.Second); ack.ReasonCode != connackNotAuthorized {
		t.Fatalf("wrong key: CONNACK return code %d, want 5", ack.ReasonCode)
	}
	bad.expectClosed(5 * time.Second)

	// A message over IoT Hub's 256 KB limit (the packet is within the
	// emulator's packet limit): refused by the hub after CONNECT.
	m := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if code := m.connect(persistent(connectPacket(id, user, pw))); code != 0 {
		t.Fatalf("CONNECT: return code %d", code)
	}
	m.send(publishPacket("devices/"+id+"/messages/events/", 1, 8, strings.Repeat("x", maxHubMessage+1)))
	m.expectClosed(10 * time.Second)

	again := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if err := again.send(persistent(connectPacket(id, user, pw))); err != nil {
		t.Fatal(err)
	}
	if ack := again.expect(packets.Connack, 10*time.Second); ack.ReasonCode != 0 || ack.SessionPresent {
		t.Fatalf("reconnect: CONNACK %s, want accepted without a session", describe(ack))
	}
	again.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	if pk := again.expect(packets.Pingresp, 10*time.Second); pk.FixedHeader.Type != packets.Pingresp {
		t.Fatal("unreachable")
	}
	if n := messageCount(t, e, 1, id); n != 0 {
		t.Fatalf("%d refused messages were counted", n)
	}
}

// TestMQTTWillRefused: a client with junk credentials cannot leave a Will
// for another device (which an unchanged SDK app would receive as a
// command), on a hub or on DPS (which accepts every CONNECT otherwise), and
// nothing is left retained for later subscribers.
func TestMQTTWillRefused(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	const victim = "will-victim"
	k := hubDeviceFor(t, e, 1, victim)
	user, pw := hubCredentials(e, 1, victim, k)
	got := make(chan string, 4)
	c := mqttConnect(t, e, "ssl://"+e.Env().HubMQTTEndpoints[0], victim, user, pw)
	if tok := c.Subscribe("devices/"+victim+"/messages/devicebound/#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	will := func(pk packets.Packet) packets.Packet {
		pk.Connect.WillFlag, pk.Connect.WillRetain, pk.Connect.WillQos = true, true, 1
		pk.Connect.WillTopic, pk.Connect.WillPayload = "devices/"+victim+"/messages/devicebound/%24.to=forged", []byte(`{"command":"unlock"}`)
		return pk
	}
	for _, addr := range []string{e.Env().HubMQTTEndpoints[0], e.Env().MQTTEndpoint} {
		m := dialRaw(t, e, addr)
		m.send(will(connectPacket("attacker", "junk", "junk")))
		if ack := m.expect(packets.Connack, 10*time.Second); ack.ReasonCode != connackNotAuthorized {
			t.Fatalf("%s: a CONNECT with a Will got return code %d, want 5", addr, ack.ReasonCode)
		}
		m.conn.Close() // an ungraceful drop is what fires a Will
	}
	// A device's own Will, with good credentials, is refused as well.
	other := hubDeviceFor(t, e, 1, "will-owner")
	ou, op := hubCredentials(e, 1, "will-owner", other)
	m := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if code := m.connect(will(connectPacket("will-owner", ou, op))); code != connackNotAuthorized {
		t.Fatalf("a device's own Will: return code %d, want 5", code)
	}
	select {
	case topic := <-got:
		t.Fatalf("the victim received a forged message on %s", topic)
	case <-time.After(time.Second):
	}
	c.Disconnect(100)
	later := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if code := later.connect(connectPacket(victim, user, pw)); code != 0 {
		t.Fatalf("reconnect: %d", code)
	}
	later.send(subscribePacket(1, "devices/"+victim+"/messages/devicebound/#"))
	later.expect(packets.Suback, 10*time.Second)
	later.expectSilence(time.Second)
}

// TestMQTTRetainedRefused: a retained publish is refused unacknowledged (the
// services keep no retained messages), and so is QoS 2, which they do not
// support.
func TestMQTTRetainedRefused(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	for _, c := range []struct {
		name string
		pk   packets.Packet
	}{
		{"retained", func() packets.Packet {
			pk := publishPacket("devices/retain-dev/messages/events/", 1, 5, "x")
			pk.FixedHeader.Retain = true
			return pk
		}()},
		{"QoS 2", publishPacket("devices/retain-dev/messages/events/", 2, 6, "x")},
	} {
		m, _ := connectHubDevice(t, e, 1, "retain-dev")
		m.send(c.pk)
		m.expectClosed(5 * time.Second)
		if n := messageCount(t, e, 1, "retain-dev"); n != 0 {
			t.Fatalf("%s: %d messages counted", c.name, n)
		}
	}
	// On DPS too: nothing is stored for the next subscriber of the response topic.
	d := dialRaw(t, e, e.Env().MQTTEndpoint)
	d.connect(connectPacket("reg-1", e.idScope+"/registrations/reg-1/api-version=2019-03-31", "x"))
	pk := publishPacket("$dps/registrations/res/200/?$rid=1", 1, 1, `{"status":"assigned"}`)
	pk.FixedHeader.Retain = true
	d.send(pk)
	d.expectClosed(5 * time.Second)
	next := dialRaw(t, e, e.Env().MQTTEndpoint)
	next.connect(connectPacket("reg-2", e.idScope+"/registrations/reg-2/api-version=2019-03-31", "x"))
	next.send(subscribePacket(1, "$dps/registrations/res/#"))
	next.expect(packets.Suback, 10*time.Second)
	next.expectSilence(time.Second)
}

// TestMQTTTopicIsolation: a client subscribes and publishes only on its own
// device's topics and its own $iothub / $dps response topics; $SYS and
// other devices' topics are refused (SUBACK 0x80; a publish closes the
// connection unacknowledged, as IoT Hub does).
func TestMQTTTopicIsolation(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	const a, b = "iso-a", "iso-b"
	hubDeviceFor(t, e, 1, b)
	m, _ := connectHubDevice(t, e, 1, a)
	filters := []struct {
		filter string
		want   byte
	}{
		{"devices/" + a + "/messages/devicebound/#", 1},
		{"$iothub/twin/res/#", 1},
		{"$iothub/twin/PATCH/properties/desired/#", 1},
		{"$iothub/methods/POST/#", 1},
		{"devices/" + b + "/messages/devicebound/#", 0x80},
		{"devices/+/messages/devicebound/#", 0x80},
		{"#", 0x80},
		{"+/+/messages/#", 0x80},
		{"$SYS/#", 0x80},
		{"$SYS/broker/clients/connected", 0x80},
		{"$dps/registrations/res/#", 0x80},
		{"$share/g/devices/" + a + "/messages/devicebound/#", 0x80},
	}
	var names []string
	for _, f := range filters {
		names = append(names, f.filter)
	}
	m.send(subscribePacket(2, names...))
	ack := m.expect(packets.Suback, 10*time.Second)
	for i, f := range filters {
		if i >= len(ack.ReasonCodes) || ack.ReasonCodes[i] != f.want {
			t.Errorf("SUBSCRIBE %s: granted %v, want %#x", f.filter, ack.ReasonCodes, f.want)
		}
	}
	m.expectSilence(1500 * time.Millisecond) // $SYS is published every second to those who may read it
	m.send(publishPacket("devices/"+b+"/messages/events/", 1, 3, "forged"))
	m.expectClosed(5 * time.Second)
	q0, _ := connectHubDevice(t, e, 1, a+"-q0") // QoS 0 too, which gets no PUBACK either way
	q0.send(publishPacket("devices/"+b+"/messages/events/", 0, 0, "forged"))
	q0.expectClosed(5 * time.Second)
	if n := messageCount(t, e, 1, b); n != 0 {
		t.Fatalf("device %s was credited %d forged messages", b, n)
	}

	// DPS: the registration topics only.
	d := dialRaw(t, e, e.Env().MQTTEndpoint)
	d.connect(connectPacket("iso-reg", e.idScope+"/registrations/iso-reg/api-version=2019-03-31", "x"))
	d.send(subscribePacket(4, "$dps/registrations/res/#", "$SYS/#", "devices/"+b+"/messages/devicebound/#", "#"))
	if got := d.expect(packets.Suback, 10*time.Second).ReasonCodes; !bytes.Equal(got, []byte{1, 0x80, 0x80, 0x80}) {
		t.Errorf("DPS SUBACK %v, want [1 128 128 128]", got)
	}
	d.send(publishPacket("devices/"+b+"/messages/events/", 1, 5, "forged"))
	d.expectClosed(5 * time.Second)
}

// TestMQTTMaxPacketSize (not parallel: it measures the process's
// allocations): a fixed header announcing a huge packet closes the
// connection at once instead of making the emulator allocate the announced
// size (256 MiB for five bytes); a full-size IoT Hub message still fits.
func TestMQTTMaxPacketSize(t *testing.T) {
	e := startTest(t, Options{})
	huge := []byte{0x30, 0xff, 0xff, 0xff, 0x7f} // PUBLISH of 256 MiB - 1
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 8 {
		m := dialRaw(t, e, e.Env().MQTTEndpoint)
		if i%2 == 0 { // after CONNECT
			m.connect(connectPacket("big-"+strconv.Itoa(i), e.idScope+"/registrations/big/api-version=2019-03-31", "x"))
		} else { // as the first packet
			huge[0] = 0x10
		}
		m.conn.Write(huge)
		m.expectClosed(5 * time.Second)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.TotalAlloc - before.TotalAlloc); grown > 64<<20 {
		t.Errorf("eight oversized headers allocated %d MiB", grown>>20)
	}

	m, _ := connectHubDevice(t, e, 1, "big-dev")
	m.send(publishPacket("devices/big-dev/messages/events/%24.ct=application%2Fjson&k=v", 1, 1, strings.Repeat("x", maxHubMessage)))
	m.expect(packets.Puback, 10*time.Second)
}

// TestMQTTConnectDeadline: a connection must complete its TLS handshake
// and send CONNECT soon after accept, over TLS and over WebSockets.
func TestMQTTConnectDeadline(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{mqttConnectTimeout: time.Second})
	closedWithin := func(what string, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: still open after 5 s", what)
		}
		t.Logf("%s: closed after %v", what, time.Since(start).Round(10*time.Millisecond))
	}
	tcp, err := net.Dial("tcp", e.Env().MQTTEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	closedWithin("no TLS handshake", tcp)

	tc, err := tls.Dial("tcp", e.Env().HubMQTTEndpoints[0], &tls.Config{RootCAs: e.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	closedWithin("TLS but no CONNECT", tc)

	ws, _, err := dialRawWS(t, e, e.hubs[1].HostName, "mqtt")
	if err != nil {
		t.Fatal(err)
	}
	closedWithin("WebSocket but no CONNECT", ws.conn)

	// Half a CONNECT is no better.
	slow := dialRaw(t, e, e.Env().MQTTEndpoint)
	slow.conn.Write([]byte{0x10, 0x40, 0x00})
	closedWithin("a partial CONNECT", slow.conn)
}

// TestMQTTKeepAliveEnforced: a silent client is dropped after 1.5 times its
// keep-alive; one asking for none (0) or more than the emulator's maximum
// gets the maximum; PINGREQ keeps a connection alive.
func TestMQTTKeepAliveEnforced(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{mqttMaxKeepAlive: time.Second})
	for _, ka := range []uint16{1, 0, 600} {
		m := dialRaw(t, e, e.Env().MQTTEndpoint)
		pk := connectPacket("ka-"+strconv.Itoa(int(ka)), e.idScope+"/registrations/ka/api-version=2019-03-31", "x")
		pk.Connect.Keepalive = ka
		if code := m.connect(pk); code != 0 {
			t.Fatalf("keep-alive %d: return code %d", ka, code)
		}
		start := time.Now()
		m.expectClosed(5 * time.Second)
		t.Logf("keep-alive %d s: dropped after %v of silence", ka, time.Since(start).Round(10*time.Millisecond))
	}
	// A keep-alive of 2 s (dropped after 3 s of silence), pinged for 4 s.
	pinged := startTest(t, Options{mqttMaxKeepAlive: time.Minute})
	m := dialRaw(t, pinged, pinged.Env().MQTTEndpoint)
	pk := connectPacket("ka-ping", pinged.idScope+"/registrations/ka/api-version=2019-03-31", "x")
	pk.Connect.Keepalive = 2
	m.connect(pk)
	for range 8 {
		time.Sleep(500 * time.Millisecond)
		if err := m.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
			t.Fatalf("a pinging client was dropped: %v", err)
		}
		m.expect(packets.Pingresp, 5*time.Second)
	}
}

// TestMQTTPublishFloodBounded (not parallel: it counts the process's
// goroutines and heap): a flood of publishes on one connection whose
// client never reads is handled one at a time, in bounded memory, instead of
// one goroutine (and buffer) per publish.
func TestMQTTPublishFloodBounded(t *testing.T) {
	e := startTest(t, Options{})
	m := dialRaw(t, e, e.Env().MQTTEndpoint)
	m.connect(connectPacket("flood", e.idScope+"/registrations/flood/api-version=2019-03-31", "not a token"))
	var one bytes.Buffer
	pk := publishPacket("$dps/registrations/PUT/iotdps-register/?$rid=1", 0, 0, `{"registrationId":"flood"}`)
	pk.ProtocolVersion = 4
	pk.PublishEncode(&one)
	batch := bytes.Repeat(one.Bytes(), 1000)

	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan int)
	go func() {
		sent := 0
		m.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		for sent < 200_000 {
			if _, err := m.conn.Write(batch); err != nil {
				break
			}
			sent += 1000
		}
		done <- sent
	}()
	maxGoroutines := 0
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
	}
	sent := <-done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("%d publishes written; goroutines %d → max %d; heap in use %d → %d MiB", sent, baseGoroutines, maxGoroutines, before.HeapInuse>>20, after.HeapInuse>>20)
	if maxGoroutines > baseGoroutines+50 {
		t.Errorf("goroutines grew from %d to %d during the flood", baseGoroutines, maxGoroutines)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Errorf("heap in use grew by %d MiB during the flood", grown>>20)
	}
}

// TestMQTTDPSSameCheckAsHTTPS: a registration over MQTT is admitted or
// refused exactly as the same token is over HTTPS (it goes through the same
// handler), whatever the token's skn.
func TestMQTTDPSSameCheckAsHTTPS(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{Seed: "demo"})
	scope := e.Env().IDScope
	groupKey, _ := keys.ParseKey(TutorialGroupKey)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}}, Timeout: 10 * time.Second}
	for i, c := range []struct {
		name string
		skn  string
		key  func(keys.Key) keys.Key
		exp  time.Duration
	}{
		{"skn=registration", "registration", nil, time.Hour},
		{"no skn", "", nil, time.Hour},
		{"another skn", "iothubowner", nil, time.Hour},
		{"wrong key", "registration", func(keys.Key) keys.Key { return keys.GenerateKey() }, time.Hour},
		{"expired", "registration", nil, -time.Minute},
	} {
		rid := "same-check-" + strconv.Itoa(i)
		k, _ := keys.DeriveDeviceKey(groupKey, rid)
		if c.key != nil {
			k = c.key(k)
		}
		tok := keys.SignSAS(scope+"/registrations/"+rid, k, c.skn, time.Now().Add(c.exp))
		r, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, "https://"+e.Env().DeviceEndpoint+"/"+scope+"/registrations/"+rid+"/register?api-version=2019-03-31", strings.NewReader(`{"registrationId":"`+rid+`"}`))
		r.Header.Set("Authorization", tok)
		r.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		m := dialRaw(t, e, e.Env().MQTTEndpoint)
		m.connect(connectPacket(rid, scope+"/registrations/"+rid+"/api-version=2019-03-31", tok))
		m.send(subscribePacket(1, "$dps/registrations/res/#"))
		m.expect(packets.Suback, 10*time.Second)
		m.send(publishPacket("$dps/registrations/PUT/iotdps-register/?$rid=1", 1, 2, `{"registrationId":"`+rid+`"}`))
		m.expect(packets.Puback, 10*time.Second)
		answer := m.expect(packets.Publish, 10*time.Second)
		status, _, _ := strings.Cut(strings.TrimPrefix(answer.TopicName, "$dps/registrations/res/"), "/")
		// A second register of an assigned device over MQTT is a re-registration, still 2xx.
		if httpOK, mqttOK := resp.StatusCode < 300, strings.HasPrefix(status, "2"); httpOK != mqttOK {
			t.Errorf("%s: HTTPS %d but MQTT %s", c.name, resp.StatusCode, status)
		}
	}
}

// TestMQTTSessionTakeover: on a hub a device's new connection replaces its
// old one (as IoT Hub does), but only an authenticated one can; on DPS, which
// accepts every CONNECT, a client reusing another's client id takes nothing
// over.
func TestMQTTSessionTakeover(t *testing.T) {
	t.Parallel()
	e := startTest(t, Options{})
	ping := func(m *rawMQTT) error {
		if err := m.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
			return err
		}
		_, err := m.read(5 * time.Second)
		return err
	}
	first, k := connectHubDevice(t, e, 1, "takeover-dev")
	user, pw := hubCredentials(e, 1, "takeover-dev", k)
	intruder := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	intruder.connect(connectPacket("takeover-dev", user, "junk"))
	if err := ping(first); err != nil {
		t.Fatalf("a refused CONNECT with the device's client id dropped the device: %v", err)
	}
	second := dialRaw(t, e, e.Env().HubMQTTEndpoints[0])
	if code := second.connect(connectPacket("takeover-dev", user, pw)); code != 0 {
		t.Fatalf("second connection: return code %d", code)
	}
	first.expectClosed(5 * time.Second)

	scopeUser := e.idScope + "/registrations/dps-dev/api-version=2019-03-31"
	a := dialRaw(t, e, e.Env().MQTTEndpoint)
	a.connect(connectPacket("dps-dev", scopeUser, "a's token"))
	b := dialRaw(t, e, e.Env().MQTTEndpoint)
	b.connect(connectPacket("dps-dev", scopeUser, "junk"))
	if err := ping(a); err != nil {
		t.Fatalf("a second DPS client with the same client id dropped the first: %v", err)
	}
}
