package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
)

// packetTap is a TLS proxy in front of the hub's MQTT listener that keeps
// every packet the device sends.
type packetTap struct {
	addr string
	pool *x509.CertPool
	mu   sync.Mutex
	sent []packets.ControlPacket
}

func newPacketTap(t *testing.T, upstream string, upstreamCAs *x509.CertPool) *packetTap {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	tap := &packetTap{pool: x509.NewCertPool()}
	tap.pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tap.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := tls.Dial("tcp", upstream, &tls.Config{RootCAs: upstreamCAs})
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, up); c.Close() }()
			go func() {
				defer up.Close()
				for {
					pk, err := packets.ReadPacket(c)
					if err != nil {
						return
					}
					tap.mu.Lock()
					tap.sent = append(tap.sent, pk)
					tap.mu.Unlock()
					if pk.Write(up) != nil {
						return
					}
				}
			}()
		}
	}()
	return tap
}

func (tap *packetTap) packets() []packets.ControlPacket {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]packets.ControlPacket(nil), tap.sent...)
}

// TestDeviceTwinWireIsWhatNodeSends checks the device's packets against
// azure-iot-device-mqtt (mqtt.ts, mqtt_twin_client.ts): the hub user name
// with api-version 2021-04-12; SUBSCRIBE QoS 0 to $iothub/twin/res/#,
// $iothub/twin/PATCH/properties/desired/# and $iothub/methods/POST/#;
// twin requests PUBLISH QoS 0, retain off, a fresh $rid each, the GET with
// a body of one space and the reported patch as its JSON; the method
// answer PUBLISH QoS 0 to $iothub/methods/res/{status}/?$rid={the hub's}.
func TestDeviceTwinWireIsWhatNodeSends(t *testing.T) {
	em, reg, devs, opts := provisioned(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tap := newPacketTap(t, em.Env().HubMQTTEndpoints[0], em.CertPool())
	dc := deviceOver(t, em, reg.Host(), devs["dev-00"], hub.ClientOptions{ClientOptions: opts, MQTTHost: tap.addr, TLSConfig: &tls.Config{RootCAs: tap.pool}}, mqttconn.MQTT)
	if _, err := dc.GetTwin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ReportProperties(ctx, dps.TwinCollection{"fw": "2.0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.WatchDesired(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dc.OnMethod(ctx, func(context.Context, hub.MethodCall) hub.MethodResponse {
		return hub.MethodResponse{Status: 200, Payload: json.RawMessage(`{"ok":true}`)}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.InvokeMethod(ctx, "dev-00", "blink", nil, nil); err != nil {
		t.Fatal(err)
	}

	var subs []string
	rids := map[string]bool{}
	var publishes []string
	for _, pk := range tap.packets() {
		switch p := pk.(type) {
		case *packets.ConnectPacket:
			if want := reg.Host() + "/dev-00/?api-version=2021-04-12&DeviceClientType="; p.ClientIdentifier != "dev-00" || !strings.HasPrefix(p.Username, want) {
				t.Errorf("CONNECT as %q / %q, want dev-00 / %s...", p.ClientIdentifier, p.Username, want)
			}
		case *packets.SubscribePacket:
			for i, topic := range p.Topics {
				subs = append(subs, topic)
				if p.Qoss[i] != 0 {
					t.Errorf("SUBSCRIBE %s at QoS %d, want 0", topic, p.Qoss[i])
				}
			}
		case *packets.PublishPacket:
			if p.Qos != 0 || p.Retain {
				t.Errorf("PUBLISH %s at QoS %d retain %v, want QoS 0, no retain", p.TopicName, p.Qos, p.Retain)
			}
			path, rid, ok := strings.Cut(p.TopicName, "?$rid=")
			if !ok || rid == "" || strings.Contains(rid, "&") {
				t.Errorf("PUBLISH %s: want exactly ?$rid= after the path", p.TopicName)
			}
			if path != "$iothub/methods/res/200/" {
				if rids[rid] {
					t.Errorf("$rid %s used twice", rid)
				}
				rids[rid] = true
			}
			publishes = append(publishes, path+" "+string(p.Payload))
		}
	}
	for _, want := range []string{"$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"} {
		if !strings.Contains(strings.Join(subs, " "), want) {
			t.Errorf("subscriptions %v lack %s", subs, want)
		}
	}
	for _, want := range []string{"$iothub/twin/GET/  ", `$iothub/twin/PATCH/properties/reported/ {"fw":"2.0"}`, `$iothub/methods/res/200/ {"ok":true}`} {
		found := false
		for _, p := range publishes {
			found = found || p == want
		}
		if !found {
			t.Errorf("no PUBLISH %q among %q", want, publishes)
		}
	}
}
