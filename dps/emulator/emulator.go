// Package emulator is a local Azure IoT Hub Device Provisioning Service plus
// the IoT hubs it links to: the DPS service API (enrollment groups, individual
// enrollments, registration records), the device registration API and the hub
// APIs a provisioned device and an operator use, over real TLS, with state in
// SQLite. The official Azure IoT SDKs work against it unchanged.
package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/dpsconsole/dpsconsole/keys"
)

// Options configure an emulator.
type Options struct {
	DataDir           string        // required; created 0700; SQLite db + TLS material live here
	HTTPSAddr         string        // DPS service + device API listener, e.g. "127.0.0.1:0"; "" = "127.0.0.1:0"
	HubAddrs          []string      // one TLS listener per linked hub; nil = two hubs on "127.0.0.1:0"
	MQTTAddr          string        // DPS's MQTT/TLS listener; "" = host:8883 when DPS is on 443, else a free port; MQTTOff = no MQTT
	Seed              string        // "demo" or "none" (""); applied only when the data dir is new
	AssignmentDelay   time.Duration // time a registration stays "assigning"; 0 = none
	ThrottlePerMinute int           // 0 = off; else 429 + Retry-After past N operations a minute
	FaultRate         float64       // fraction of DPS requests failing with 500 or a dropped connection
	Logger            *slog.Logger  // nil = discard

	// Entra turns on the Entra ID-like authority and the ARM surface (one
	// more HTTPS listener, EntraAddr) and bearer tokens on the DPS and hub
	// service APIs; emulator.env then names the two principals.
	Entra            bool
	EntraAddr        string        // "" = "127.0.0.1:0", the port kept across restarts
	TokenLifetime    time.Duration // of access tokens; 0 = 1 h
	DeviceCodeAs     string        // who approves a device-code sign-in: DeviceCodeContributor (""), DeviceCodeReader or DeviceCodeDecline
	DisableLocalAuth bool          // refuse SAS on the DPS and hub service APIs; only bearer tokens (needs Entra)

	limits             *httpLimits   // nil = defaultHTTPLimits; tests shorten them
	mqttConnectTimeout time.Duration // tests: accept to CONNECT; 0 = defaultMQTTConnectTimeout
	mqttMaxKeepAlive   time.Duration // tests: keep-alive used for 0 and above; 0 = defaultMQTTMaxKeepAlive
}

// httpLimits bound what one client of an HTTPS listener may hold, so slow or
// stalled clients cannot pile up connections that starve the real ones.
type httpLimits struct {
	header  time.Duration // to read the request line and headers (and the TLS handshake)
	request time.Duration // to read the whole request, body included
	write   time.Duration // from the end of the headers to the end of the answer
	idle    time.Duration // a kept-alive connection waiting for its next request
	maxBody int64         // bytes of request body, whatever the route
}

// defaultHTTPLimits: a 1 MB body (the largest any route takes) needs only
// 35 KB/s to arrive in time; the webhook of custom allocation (10 s) fits in
// the write deadline.
var defaultHTTPLimits = httpLimits{header: 10 * time.Second, request: 30 * time.Second, write: time.Minute, idle: 2 * time.Minute, maxBody: maxBodyBytes}

// Env is what a client needs to use the emulator; emulator.env holds the same.
type Env struct {
	DPSConnectionString  string   // service connection string (policy provisioningserviceowner)
	IDScope              string   // the ID scope devices register under
	DeviceEndpoint       string   // provisioning host, host[:port] with the port left out when 443
	MQTTEndpoint         string   // host:port of DPS's MQTT/TLS listener, "" when MQTT is off
	HubMQTTEndpoints     []string // host:port of each linked hub's MQTT/TLS listener
	CAFile               string   // PEM of the CA that signed the emulator's certificates
	HubConnectionStrings []string // service connection string (iothubowner) of each linked hub

	// Set when Options.Entra is on. The secrets are client secrets: keep
	// them like keys.
	TenantID                string // the emulated Entra tenant
	ClientID                string // Contributor principal
	ClientSecret            string
	ReaderClientID          string // Reader principal
	ReaderClientSecret      string
	AuthorityHost           string // https://host:port/, for cloud.Configuration.ActiveDirectoryAuthorityHost
	ResourceManagerEndpoint string // https://host:port/, the ARM endpoint (same listener)
	SubscriptionID          string
	DPSName                 string // the emulated DPS's ARM resource name
	DPSResourceGroup        string
}

// EnvFile is the name of the env file in the data dir.
const EnvFile = "emulator.env"

// ErrDataDirInUse is returned by Start when another emulator runs on the data
// dir; its emulator.env says how to reach it.
var ErrDataDirInUse = errors.New("another emulator is running on this data dir")

// Policy names of the emulated services.
const (
	servicePolicy = "provisioningserviceowner"
	hubPolicy     = "iothubowner"
)

// Emulator is a running emulator. Close stops it.
type Emulator struct {
	opts       Options
	log        *slog.Logger
	store      *store
	ca         *authority
	idScope    string
	serviceKey keys.Key       // key of the provisioningserviceowner policy
	verified   verifiedTokens // service tokens for dpsHost that passed authorizeService
	dpsHost    string         // DPS host name as clients address it (host[:port])
	hubs       []*hub
	servers    []*http.Server
	realism    *realism
	dev        devState // the device API's state (device_api.go)
	stats      stats
	lock       *os.File        // held while running (lock_unix.go)
	mqtt       *mqtt.Server    // nil when MQTT is off
	mqttEPs    []*mqttEndpoint // DPS, then each hub; nil when MQTT is off
	devices    hubSessions     // connected hub devices' state and method calls (mqtt_twin.go)
	entra      *entraAuthority // nil unless Options.Entra
	env        Env
	serveWG    sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// hub is a linked IoT hub with its listener.
type hub struct {
	linkedHub
	key      keys.Key       // key of the iothubowner policy
	verified verifiedTokens // service tokens that passed hubServiceAuth
}

// Start opens (or creates) the data dir, starts every listener and returns
// once they accept connections. ctx bounds the start only; Close stops the
// emulator.
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	if opts.DataDir == "" {
		return nil, errors.New("emulator: Options.DataDir is required")
	}
	switch opts.Seed {
	case "", "none", "demo":
	default:
		return nil, fmt.Errorf("emulator: unknown seed %q; use demo or none", opts.Seed)
	}
	if !(opts.FaultRate >= 0 && opts.FaultRate <= 1) { // also refuses NaN
		return nil, fmt.Errorf("emulator: fault rate %v is not a fraction between 0 and 1; use e.g. 0.05 for 5 %% of requests", opts.FaultRate)
	}
	if opts.limits == nil {
		opts.limits = &defaultHTTPLimits
	}
	if opts.ThrottlePerMinute < 0 {
		return nil, fmt.Errorf("emulator: throttle %d/min is negative", opts.ThrottlePerMinute)
	}
	if opts.HTTPSAddr == "" {
		opts.HTTPSAddr = "127.0.0.1:0"
	}
	if opts.HubAddrs == nil {
		opts.HubAddrs = []string{"127.0.0.1:0", "127.0.0.1:0"}
	}
	if len(opts.HubAddrs) == 0 {
		return nil, errors.New("emulator: at least one hub address is needed")
	}
	if err := checkEntraOptions(&opts); err != nil {
		return nil, err
	}
	e := &Emulator{opts: opts, log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.start(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) start(ctx context.Context) error {
	dir := e.opts.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("emulator: create the data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	e.lock = lock
	used := usedBefore(dir)
	st, fresh, err := openStore(dir, used)
	if err != nil {
		return err
	}
	e.store = st
	// The identity before the CA: a CA in the dir then proves the identity
	// was made, so loadIdentity can tell lost settings from a first start.
	if err := e.loadIdentity(ctx, used); err != nil {
		return err
	}
	if e.ca, err = loadOrCreateCA(dir); err != nil {
		return err
	}

	// Listeners first: the host names (ports) go into the certificate and the
	// linked hubs.
	persistedDPS, err := st.setting(ctx, "dps_addr")
	if err != nil {
		return err
	}
	dpsLn, err := listenReusing(e.opts.HTTPSAddr, persistedDPS)
	if err != nil {
		return fmt.Errorf("emulator: listen for DPS on %s: %w", e.opts.HTTPSAddr, err)
	}
	e.dpsHost = hostName(e.opts.HTTPSAddr, dpsLn.Addr())
	if err := st.setSetting(ctx, "dps_addr", dpsLn.Addr().String()); err != nil {
		dpsLn.Close()
		return err
	}
	listeners := []net.Listener{dpsLn}
	hosts := []string{hostOnly(e.opts.HTTPSAddr, dpsLn.Addr())}
	known, err := st.linkedHubs(ctx)
	if err != nil {
		return closeAll(listeners, err)
	}
	for i, addr := range e.opts.HubAddrs {
		h := &hub{linkedHub: linkedHub{Index: i + 1, PolicyName: hubPolicy, Weight: 1, ApplyAllocation: true}}
		oldHost := ""
		if i < len(known) {
			h.linkedHub = known[i]
			oldHost = known[i].HostName
		} else {
			h.PolicyKey = keys.GenerateKey().Base64()
		}
		ln, err := listenReusing(addr, h.Addr)
		if err != nil {
			return closeAll(listeners, fmt.Errorf("emulator: listen for hub %d on %s: %w", i+1, addr, err))
		}
		listeners = append(listeners, ln)
		hosts = append(hosts, hostOnly(addr, ln.Addr()))
		h.HostName, h.Addr = hostName(addr, ln.Addr()), ln.Addr().String()
		if h.key, err = keys.ParseKey(h.PolicyKey); err != nil {
			return closeAll(listeners, fmt.Errorf("emulator: the stored key of hub %d is invalid: %w", i+1, err))
		}
		if err := st.saveLinkedHub(ctx, h.linkedHub, oldHost); err != nil {
			return closeAll(listeners, err)
		}
		e.hubs = append(e.hubs, h)
	}

	if e.opts.MQTTAddr != MQTTOff {
		if e.mqttEPs, err = e.listenMQTT(ctx, listeners); err != nil {
			return closeAll(listeners, err)
		}
		for _, ep := range e.mqttEPs {
			listeners = append(listeners, ep.tls.ln)
			host, _, _ := net.SplitHostPort(ep.host)
			hosts = append(hosts, host)
		}
	}

	var entraLn net.Listener
	if e.opts.Entra {
		if entraLn, err = e.listenEntra(ctx); err != nil {
			return closeAll(listeners, err)
		}
		listeners = append(listeners, entraLn)
		hosts = append(hosts, hostOnly(e.opts.EntraAddr, entraLn.Addr()))
	}

	leaf, err := e.ca.issueLeaf(hosts)
	if err != nil {
		return closeAll(listeners, err)
	}
	if fresh {
		if e.opts.Seed == "demo" {
			if err := e.seedDemo(ctx); err != nil {
				return closeAll(listeners, fmt.Errorf("emulator: seed the demo data: %w", err))
			}
		}
		if err := st.setSetting(ctx, "created", time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return closeAll(listeners, err)
		}
	}
	e.realism = newRealism(e.opts.ThrottlePerMinute, e.opts.FaultRate, &e.stats)
	e.dev.init(e)

	tlsConf := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	if e.mqttEPs != nil { // before HTTPS, which hands it WebSocket connections
		if err := e.startMQTT(e.mqttEPs, tlsConf); err != nil {
			return closeAll(listeners, fmt.Errorf("emulator: start MQTT: %w", err))
		}
	}
	e.serve(dpsLn, tlsConf, withWebSocket(e.mqttEndpoint(0), http.HandlerFunc(e.serveDPS)))
	for i, h := range e.hubs {
		e.serve(listeners[i+1], tlsConf, withWebSocket(e.mqttEndpoint(i+1), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serveHub(h, w, r) })))
	}
	if entraLn != nil {
		e.serve(entraLn, tlsConf, http.HandlerFunc(e.serveEntra))
	}
	e.env = e.makeEnv()
	if err := writeFileAtomic(filepath.Join(e.opts.DataDir, EnvFile), []byte(e.env.String()), 0o600); err != nil {
		return err
	}
	attrs := []any{"dps", e.dpsHost, "idScope", e.idScope, "hubs", len(e.hubs), "dataDir", e.opts.DataDir}
	if e.entra != nil {
		attrs = append(attrs, "entra", e.entra.base, "localAuth", !e.opts.DisableLocalAuth)
	}
	e.log.Info("emulator started", attrs...)
	return nil
}

// loadIdentity reads the ID scope and service policy key, making them on the
// first start (in one transaction, so a crash leaves both or neither). In a
// data dir used before, missing ones are refused: new ones would strand every
// device and client set up for the old.
func (e *Emulator) loadIdentity(ctx context.Context, used bool) error {
	scope, err := e.store.setting(ctx, "id_scope")
	if err != nil {
		return err
	}
	k, err := e.store.setting(ctx, "service_key")
	if err != nil {
		return err
	}
	if scope == "" || k == "" {
		if used {
			return fmt.Errorf("emulator: the database %s has no ID scope or service key in its settings, yet the data dir holds the emulator's CA (%s), so it was used before: "+
				"the settings were lost or the database replaced. Put the original %s back to keep the old identity, or delete the data dir to start afresh (devices and clients must then be set up again)",
				filepath.Join(e.opts.DataDir, dbFile), caCertFile, dbFile)
		}
		scope, k = "0ne"+strings.ToUpper(newGUID()[:8]), keys.GenerateKey().Base64()
		if err := e.store.setSettings(ctx, map[string]string{"id_scope": scope, "service_key": k}); err != nil {
			return err
		}
	}
	e.idScope = scope
	e.serviceKey, err = keys.ParseKey(k)
	if err != nil {
		return fmt.Errorf("emulator: the stored service key is invalid: %w", err)
	}
	return nil
}

// usedBefore reports whether an emulator ran on dir before: its CA is there.
func usedBefore(dir string) bool {
	for _, f := range []string{caCertFile, caKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// maxStreamsPerConn is how many requests one HTTP/2 connection may have in
// flight at once.
const maxStreamsPerConn = 1000

func (e *Emulator) serve(ln net.Listener, conf *tls.Config, h http.Handler) {
	lim := e.opts.limits
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         conf.Clone(),
		ReadHeaderTimeout: lim.header,
		ReadTimeout:       lim.request, // per stream on HTTP/2; a handler that hijacks (a WebSocket) must clear the conn's deadlines
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    64 << 10, // a SAS token is a few hundred bytes
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
		// A direct-method call holds its stream until the device answers, so
		// one service client can have hundreds waiting. Past a connection's
		// stream limit (250 by default) net/http's client dials one more TLS
		// connection per waiting request: a burst of calls dialed thousands
		// and starved itself.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreamsPerConn},
	}
	e.servers = append(e.servers, srv)
	e.serveWG.Add(1)
	go func() {
		defer e.serveWG.Done()
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// Close stops the listeners, waits for requests in flight (up to 5 s) and
// closes the database.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, s := range e.servers {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, s.Close())
			}
		}
		e.serveWG.Wait()
		if e.mqtt != nil {
			errs = append(errs, e.mqtt.Close())
		}
		if e.dev.e != nil {
			e.dev.close()
		}
		if e.store != nil {
			errs = append(errs, e.store.close())
		}
		if e.lock != nil {
			errs = append(errs, e.lock.Close())
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// Env returns what emulator.env holds.
func (e *Emulator) Env() Env {
	env := e.env
	env.HubConnectionStrings = append([]string(nil), e.env.HubConnectionStrings...)
	env.HubMQTTEndpoints = append([]string(nil), e.env.HubMQTTEndpoints...)
	return env
}

// CertPool returns a pool holding the emulator's CA.
func (e *Emulator) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.ca.cert)
	return p
}

// CAPEM returns the emulator's CA certificate in PEM.
func (e *Emulator) CAPEM() []byte { return append([]byte(nil), e.ca.certPEM...) }

func (e *Emulator) makeEnv() Env {
	env := Env{
		DPSConnectionString: keys.ConnectionString{HostName: e.dpsHost, SharedAccessKeyName: servicePolicy, SharedAccessKey: e.serviceKey}.Encode(),
		IDScope:             e.idScope,
		DeviceEndpoint:      e.dpsHost,
		CAFile:              filepath.Join(absDir(e.opts.DataDir), caCertFile),
	}
	for i, ep := range e.mqttEPs {
		if i == 0 {
			env.MQTTEndpoint = ep.host
		} else {
			env.HubMQTTEndpoints = append(env.HubMQTTEndpoints, ep.host)
		}
	}
	if a := e.entra; a != nil {
		env.TenantID, env.SubscriptionID = a.tenant, a.subscription
		env.ClientID, env.ClientSecret = a.contributor.clientID, a.contributor.secret
		env.ReaderClientID, env.ReaderClientSecret = a.reader.clientID, a.reader.secret
		env.AuthorityHost, env.ResourceManagerEndpoint = a.base+"/", a.base+"/"
		env.DPSName, env.DPSResourceGroup = dpsResourceName, dpsResourceGroup
	}
	for _, h := range e.hubs {
		env.HubConnectionStrings = append(env.HubConnectionStrings,
			keys.ConnectionString{HostName: h.HostName, SharedAccessKeyName: h.PolicyName, SharedAccessKey: h.key}.Encode())
	}
	return env
}

// String renders the env file: KEY=VALUE lines, as architecture.md promises.
// It holds keys: print it only where the operator asked for it.
func (env Env) String() string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	line("DPS_CONNECTION_STRING", env.DPSConnectionString)
	line("DPS_ID_SCOPE", env.IDScope)
	line("DPS_DEVICE_ENDPOINT", env.DeviceEndpoint)
	if env.MQTTEndpoint != "" { // MQTTOff: no line, rather than an empty value a shell would export
		line("DPS_MQTT_ENDPOINT", env.MQTTEndpoint)
	}
	line("DPS_CA_FILE", env.CAFile)
	if len(env.HubConnectionStrings) > 0 {
		line("IOTHUB_CONNECTION_STRING", env.HubConnectionStrings[0])
	}
	for i, cs := range env.HubConnectionStrings {
		line("IOTHUB_CONNECTION_STRING_"+strconv.Itoa(i+1), cs)
	}
	if len(env.HubMQTTEndpoints) > 0 {
		line("IOTHUB_MQTT_ENDPOINT", env.HubMQTTEndpoints[0])
	}
	for i, hp := range env.HubMQTTEndpoints {
		line("IOTHUB_MQTT_ENDPOINT_"+strconv.Itoa(i+1), hp)
	}
	if env.TenantID != "" {
		line("AZURE_TENANT_ID", env.TenantID)
		line("AZURE_CLIENT_ID", env.ClientID)
		line("AZURE_CLIENT_SECRET", env.ClientSecret)
		line("DPS_READER_CLIENT_ID", env.ReaderClientID)
		line("DPS_READER_CLIENT_SECRET", env.ReaderClientSecret)
		line("AZURE_AUTHORITY_HOST", env.AuthorityHost)
		line("AZURE_RESOURCE_MANAGER_ENDPOINT", env.ResourceManagerEndpoint)
		line("AZURE_SUBSCRIPTION_ID", env.SubscriptionID)
		line("DPS_NAME", env.DPSName)
		line("DPS_RESOURCE_GROUP", env.DPSResourceGroup)
	}
	return b.String()
}

func absDir(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// listenReusing listens on addr; when addr asks for any port (":0") and an
// earlier start of this data dir used a port on the same host, it takes that
// port again if it is free, so hub host names stored in records stay valid.
func listenReusing(addr, previous string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port == "0" && previous != "" {
		if _, pport, err := net.SplitHostPort(previous); err == nil {
			if ln, err := net.Listen("tcp", net.JoinHostPort(host, pport)); err == nil {
				return ln, nil
			}
		}
	}
	return net.Listen("tcp", addr)
}

// hostOnly is the host clients use to reach a listener: the name asked for,
// or the bound IP, or localhost for a wildcard address.
func hostOnly(requested string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(requested)
	if host != "" && net.ParseIP(host) == nil {
		return host
	}
	ta, ok := bound.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		return "localhost"
	}
	return ta.IP.String()
}

// hostName is host:port, with the port left out when it is 443 (what the
// official SDKs, which cannot take a port, need).
func hostName(requested string, bound net.Addr) string {
	host := hostOnly(requested, bound)
	port := 0
	if ta, ok := bound.(*net.TCPAddr); ok {
		port = ta.Port
	}
	if port == 443 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func closeAll(ls []net.Listener, err error) error {
	for _, l := range ls {
		l.Close()
	}
	return err
}
