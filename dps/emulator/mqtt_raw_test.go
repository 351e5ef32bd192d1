package emulator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/keys"
)

// rawMQTT is a hand-driven MQTT 3.1.1 client: it sends exactly the packets a
// test builds (a malicious client is not an SDK) and reads what comes back.
type rawMQTT struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw opens a TLS connection to an MQTT/TLS listener (host:port).
func dialRaw(t testing.TB, e *Emulator, addr string) *rawMQTT {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.CertPool()})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawMQTT{t: t, conn: c, r: bufio.NewReader(c)}
}

// dialRawWS opens MQTT over a WebSocket at wss://host/$iothub/websocket
// offering subprotocol proto.
func dialRawWS(t testing.TB, e *Emulator, host, proto string) (*rawMQTT, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: e.CertPool()}, Subprotocols: []string{proto}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial("wss://"+host+mqttWebSocketPath, nil)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	c := &wsConn{Conn: ws.NetConn(), ws: ws}
	return &rawMQTT{t: t, conn: c, r: bufio.NewReader(c)}, resp, nil
}

// send encodes and writes pk; a write error is returned (the server may have
// closed the connection on purpose).
func (m *rawMQTT) send(pk packets.Packet) error {
	if pk.ProtocolVersion == 0 {
		pk.ProtocolVersion = 4
	}
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	default:
		err = fmt.Errorf("rawMQTT cannot send packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return err
	}
	m.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = m.conn.Write(buf.Bytes())
	return err
}

// read returns the next packet, or an error (io.EOF and the like when the
// server closed the connection, a timeout when nothing came within d).
func (m *rawMQTT) read(d time.Duration) (packets.Packet, error) {
	m.conn.SetReadDeadline(time.Now().Add(d))
	var pk packets.Packet
	b, err := m.r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	if pk.FixedHeader.Remaining, _, err = packets.DecodeLength(m.r); err != nil {
		return pk, err
	}
	body := make([]byte, pk.FixedHeader.Remaining)
	if _, err := io.ReadFull(m.r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = 4
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Pingresp:
	default:
		err = fmt.Errorf("unexpected packet type %d", pk.FixedHeader.Type)
	}
	return pk, err
}

// expect reads the next packet and fails unless it has type typ.
func (m *rawMQTT) expect(typ byte, d time.Duration) packets.Packet {
	m.t.Helper()
	pk, err := m.read(d)
	if err != nil {
		m.t.Fatalf("waiting for packet type %d: %v", typ, err)
	}
	if pk.FixedHeader.Type != typ {
		m.t.Fatalf("got packet %s, want type %d", describe(pk), typ)
	}
	return pk
}

// expectClosed fails unless the server closes the connection within d,
// without sending anything first.
func (m *rawMQTT) expectClosed(d time.Duration) {
	m.t.Helper()
	pk, err := m.read(d)
	if err == nil {
		m.t.Fatalf("got packet %s, want the connection closed", describe(pk))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		m.t.Fatalf("the connection is still open after %v", d)
	}
}

// expectSilence fails if a packet arrives within d (the connection may stay
// open).
func (m *rawMQTT) expectSilence(d time.Duration) {
	m.t.Helper()
	pk, err := m.read(d)
	if err == nil {
		m.t.Fatalf("got packet %s, want nothing", describe(pk))
	}
}

func connectPacket(clientID, user, password string) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: clientID,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: password != "", Password: []byte(password),
		},
	}
}

// connect sends pk (a CONNECT) and returns the CONNACK's return code.
func (m *rawMQTT) connect(pk packets.Packet) byte {
	m.t.Helper()
	if err := m.send(pk); err != nil {
		m.t.Fatalf("send CONNECT: %v", err)
	}
	return m.expect(packets.Connack, 10*time.Second).ReasonCode
}

func publishPacket(topic string, qos byte, id uint16, payload string) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, PacketID: id, Payload: []byte(payload)}
}

func subscribePacket(id uint16, filters ...string) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	return pk
}

// hubDeviceFor adds device id to hub i (1-based) with a fresh key, as an
// assignment would, and returns the key.
func hubDeviceFor(t testing.TB, e *Emulator, i int, id string) keys.Key {
	t.Helper()
	k := keys.GenerateKey()
	err := e.store.tx(context.Background(), func(tx *sql.Tx) error {
		_, err := e.store.putHubDeviceTx(context.Background(), tx, hubDevice{Hub: i, DeviceID: id, PrimaryKey: k.Base64(), SecondaryKey: keys.GenerateKey().Base64()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// hubCredentials are the user name and password an SDK sends to hub i for
// a device with key k.
func hubCredentials(e *Emulator, i int, id string, k keys.Key) (user, password string) {
	host := e.hubs[i-1].HostName
	return host + "/" + id + "/?api-version=2021-04-12&DeviceClientType=test",
		keys.SignSAS(host+"/devices/"+id, k, "", time.Now().Add(time.Hour))
}

// connectHubDevice connects a new device on hub i over MQTT/TLS and returns
// the client, the device id and its key.
func connectHubDevice(t testing.TB, e *Emulator, i int, id string) (*rawMQTT, keys.Key) {
	t.Helper()
	k := hubDeviceFor(t, e, i, id)
	m := dialRaw(t, e, e.Env().HubMQTTEndpoints[i-1])
	user, pw := hubCredentials(e, i, id, k)
	if code := m.connect(connectPacket(id, user, pw)); code != 0 {
		t.Fatalf("CONNECT of %s to hub %d: return code %d", id, i, code)
	}
	return m, k
}

func messageCount(t testing.TB, e *Emulator, i int, id string) int {
	t.Helper()
	d, err := e.HubDevice(context.Background(), e.hubs[i-1].HostName, id)
	if err != nil {
		t.Fatal(err)
	}
	return int(d.MessageCount)
}

// describe names a packet briefly for a failure message.
func describe(pk packets.Packet) string {
	return fmt.Sprintf("type %d (id %d, topic %q, code %d, session present %v)", pk.FixedHeader.Type, pk.PacketID, pk.TopicName, pk.ReasonCode, pk.SessionPresent)
}
