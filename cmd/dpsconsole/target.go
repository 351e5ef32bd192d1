package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/discovery"
	"github.com/dpsconsole/dpsconsole/dps/emulator"
	"github.com/dpsconsole/dpsconsole/dps/hub"
	"github.com/dpsconsole/dpsconsole/dps/signin"
	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/dpsconsole/dpsconsole/tui"
)

// target is the DPS the commands talk to: a real one named by a connection
// string, or the embedded emulator. Commands with their own --id-scope or
// --provisioning-host flags override the fields they carry.
type target struct {
	client               *dps.Client
	name                 string            // for headers and messages, e.g. "emulator (127.0.0.1:40123)"
	emulated             bool              // the embedded emulator, started by this process
	idScope              string            // for device registration; "" when unknown
	deviceEndpoint       string            // provisioning host[:port] for devices
	mqttEndpoint         string            // DPS MQTT host:port for devices; "" = the device endpoint's name on 8883
	hubMQTT              map[string]string // lower-case hub host name → its MQTT host:port; absent = the hub's name on 8883
	hubConnectionStrings []string          // service connection strings of linked hubs (may be empty)
	transport            *http.Client      // trusts the system roots plus the target's CA; for other clients
	caPEM                []byte            // the extra CA, or nil
	emu                  *emulator.Emulator

	// Set when signed in with Entra ID (--dps, --target emulator --auth login).
	auth       string                 // authSAS, authLogin or authSASFromARM
	credential azcore.TokenCredential // the Entra ID sign-in; nil with a connection string
	linkedHubs []string               // host names of the DPS's linked hubs, reached with credential under --auth login
}

// registry returns the registry client of hubHost: signed in with Entra ID
// when the target is (--auth login), else from the hub's connection string.
// The client is the console's (tui.Target.Registry); a hub the target has
// no connection string for is a usage error naming the variable to set.
func (t *target) registry(hubHost string) (*hub.RegistryClient, error) {
	if t.auth != authLogin {
		known, err := t.hubHosts()
		if err != nil {
			return nil, err
		}
		switch {
		case len(known) == 0:
			return nil, usagef("no IoT hub connection string is set: set $IOTHUB_CONNECTION_STRING to the service connection string of %s (Azure portal: the hub → Shared access policies → iothubowner), or sign in with --auth login", hubHost)
		case !slices.ContainsFunc(known, func(h string) bool { return strings.EqualFold(h, hubHost) }):
			return nil, usagef("no hub connection string is for %s ($IOTHUB_CONNECTION_STRING* name %s): add one as $IOTHUB_CONNECTION_STRING_%d", hubHost, strings.Join(known, ", "), len(known)+1)
		}
	}
	return t.tuiTarget().Registry(hubHost)
}

// registries returns a registry client of every hub the target can reach:
// signed in, each linked hub; else each hub connection string's.
func (t *target) registries() ([]*hub.RegistryClient, error) {
	if t.auth != authLogin {
		if _, err := t.hubHosts(); err != nil {
			return nil, err
		}
	}
	return t.tuiTarget().Registries()
}

// hubHosts are the host names of the hub connection strings; one that does
// not parse is a usage error naming it.
func (t *target) hubHosts() ([]string, error) {
	var hosts []string
	for i, cs := range t.hubConnectionStrings {
		c, err := keys.ParseServiceConnectionString(cs)
		if err != nil {
			return nil, usagef("hub connection string %d ($IOTHUB_CONNECTION_STRING*): %v", i+1, err)
		}
		hosts = append(hosts, c.HostName)
	}
	return hosts, nil
}

// tuiTarget is t as the console's code takes it, without the state the
// console adds (consoleTarget): one way to reach a hub for both.
func (t *target) tuiTarget() *tui.Target {
	ct := &tui.Target{
		Name: t.name, IDScope: t.idScope, DeviceEndpoint: t.deviceEndpoint, Service: t.client,
		MQTTEndpoint: t.mqttEndpoint, HubMQTTEndpoints: t.hubMQTT,
		HubConnectionStrings: t.hubConnectionStrings, HTTPClient: t.transport,
		Credential: t.credential, LinkedHubs: t.linkedHubs,
	}
	switch t.auth {
	case authLogin:
		ct.Auth = tui.AuthEntraID
	case authSASFromARM:
		ct.Auth = tui.AuthSASFromARM
	}
	return ct
}

// Close stops the embedded emulator, if this target started one.
func (t *target) Close() error {
	// Hang up first: an HTTP/2 server shutting down waits a second for
	// clients that keep their connection open.
	t.transport.CloseIdleConnections()
	if t.emu != nil {
		return t.emu.Close()
	}
	return nil
}

// hubMQTTHost is where a device's MQTT connection to hubHost goes; "" is
// the hub's name on 8883, as for a real hub.
func (t *target) hubMQTTHost(hubHost string) string {
	return t.hubMQTT[strings.ToLower(hubHost)]
}

// hubMQTTEndpoints pairs each hub connection string's host with the MQTT
// endpoint at the same index (the emulator's IOTHUB_MQTT_ENDPOINT_N).
func hubMQTTEndpoints(connectionStrings, endpoints []string) map[string]string {
	m := map[string]string{}
	for i, cs := range connectionStrings {
		c, err := keys.ParseServiceConnectionString(cs)
		if err == nil && i < len(endpoints) && endpoints[i] != "" {
			m[strings.ToLower(c.HostName)] = endpoints[i]
		}
	}
	return m
}

// hubMQTTFromEnv reads IOTHUB_MQTT_ENDPOINT[_N] next to
// IOTHUB_CONNECTION_STRING[_N], as a standalone emulator's env file has them.
func hubMQTTFromEnv() map[string]string {
	var css, eps []string
	for _, n := range hubEnvSuffixes() {
		css, eps = append(css, os.Getenv("IOTHUB_CONNECTION_STRING"+n)), append(eps, os.Getenv("IOTHUB_MQTT_ENDPOINT"+n))
	}
	return hubMQTTEndpoints(css, eps)
}

// hubEnvSuffixes are the suffixes of the hub variables: "" (for
// IOTHUB_CONNECTION_STRING), then _1, _2, … while IOTHUB_CONNECTION_STRING_N is set.
func hubEnvSuffixes() []string {
	out := []string{""}
	for i := 1; ; i++ {
		n := "_" + strconv.Itoa(i)
		if _, ok := os.LookupEnv("IOTHUB_CONNECTION_STRING" + n); !ok {
			return out
		}
		out = append(out, n)
	}
}

// globalDeviceEndpoint is where real devices register.
const globalDeviceEndpoint = "global.azure-devices-provisioning.net"

// openTarget resolves the target: --dps, --target azure or --auth login mean
// a DPS found with ARM and signed in with Entra ID (openAzure);
// --connection-string or $DPS_CONNECTION_STRING means a real DPS (or a
// standalone emulator, with --ca-file/$DPS_CA_FILE) signed with its key;
// none of them means the embedded emulator in <state-dir>/emulator, started
// in-process (signed in with --target emulator --auth login).
func (a *app) openTarget(ctx context.Context) (*target, error) {
	azure, err := a.wantsAzure()
	if err != nil {
		return nil, err
	}
	if azure {
		return a.openAzure(ctx)
	}
	cs, source := a.connectionString, "--connection-string"
	if cs == "" && a.azure.target != targetEmulator {
		cs, source = os.Getenv("DPS_CONNECTION_STRING"), "$DPS_CONNECTION_STRING"
	}
	if cs == "" {
		if a.caFile != "" {
			return nil, usagef("--ca-file needs --connection-string (or $DPS_CONNECTION_STRING): it is the CA of that DPS; the embedded emulator needs none")
		}
		return a.openEmulator(ctx)
	}
	caPEM, err := a.readCA()
	if err != nil {
		return nil, err
	}
	parsed, err := keys.ParseServiceConnectionString(cs)
	if err != nil {
		// The keys package's errors never repeat the key.
		if !strings.Contains(cs, ";") && strings.HasPrefix(strings.ToLower(cs), "hostname=") {
			// An unquoted string in a shell (or a sourced emulator.env) ends at the first ';'.
			err = fmt.Errorf("%w; it has no ';', so it was probably cut at the first one: quote it in the shell", err)
		}
		return nil, usagef("the connection string from %s is not usable: %v\nA DPS service connection string looks like HostName=<name>.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=<base64 key> (Azure portal: your DPS → Shared access policies)", source, err)
	}
	tr, err := dps.NewTransport(caPEM)
	if err != nil {
		return nil, err
	}
	client, err := dps.NewClientFromConnectionString(cs, clientOptions(tr))
	if err != nil {
		return nil, usagef("the connection string from %s is not usable: %v", source, err)
	}
	deviceEndpoint := os.Getenv("DPS_DEVICE_ENDPOINT")
	if deviceEndpoint == "" {
		deviceEndpoint = globalDeviceEndpoint
	}
	return &target{
		client:               client,
		name:                 "DPS " + parsed.HostName,
		idScope:              os.Getenv("DPS_ID_SCOPE"),
		deviceEndpoint:       deviceEndpoint,
		mqttEndpoint:         os.Getenv("DPS_MQTT_ENDPOINT"),
		hubConnectionStrings: hubConnectionStringsFromEnv(),
		hubMQTT:              hubMQTTFromEnv(),
		transport:            tr,
		caPEM:                caPEM,
	}, nil
}

// withTarget runs fn against the resolved target and closes it afterwards.
func (a *app) withTarget(ctx context.Context, fn func(*target) error) error {
	t, err := a.openTarget(ctx)
	if err != nil {
		return err
	}
	defer t.Close()
	return fn(t)
}

func (a *app) openEmulator(ctx context.Context) (*target, error) {
	dir := filepath.Join(a.stateDir, "emulator")
	emu, err := emulator.Start(ctx, emulator.Options{
		DataDir:         dir,
		HTTPSAddr:       "127.0.0.1:0",
		Seed:            "demo",
		AssignmentDelay: time.Second,
		Entra:           a.azure.auth == authLogin,
	})
	if err != nil {
		// Said once: "start the embedded emulator in …: emulator: …" named it twice.
		why := strings.TrimPrefix(err.Error(), "emulator: ")
		return nil, fmt.Errorf("start the embedded emulator in %s: %s (set --connection-string or $DPS_CONNECTION_STRING to use a real DPS instead)", dir, why)
	}
	t, err := emulatorTarget(emu)
	if err == nil && a.azure.auth == authLogin {
		err = signInToEmulator(t, emu.Env())
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("connect to the embedded emulator: %w", err), emu.Close())
	}
	return t, nil
}

// signInToEmulator switches t to Entra ID (--target emulator --auth login):
// signed in as the embedded emulator's Contributor principal through its
// authority, the same code path (MSAL's client credentials) as the
// environment credential against Azure, and bearer tokens on DPS and hubs.
func signInToEmulator(t *target, env emulator.Env) error {
	cloud := signin.Private(env.AuthorityHost, env.ResourceManagerEndpoint)
	cred, err := azidentity.NewClientSecretCredential(env.TenantID, env.ClientID, env.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud, Transport: t.transport}, DisableInstanceDiscovery: true})
	if err != nil {
		return err
	}
	opts := clientOptions(t.transport)
	opts.ResourceID = "/subscriptions/" + env.SubscriptionID + "/resourceGroups/" + env.DPSResourceGroup + "/providers/Microsoft.Devices/provisioningServices/" + env.DPSName
	if t.client, err = dps.NewClient(t.client.Host(), cred, opts); err != nil {
		return err
	}
	t.auth, t.credential = authLogin, cred
	for _, cs := range env.HubConnectionStrings {
		if c, err := keys.ParseServiceConnectionString(cs); err == nil {
			t.linkedHubs = append(t.linkedHubs, c.HostName)
		}
	}
	t.name += ", signed in with Entra ID"
	return nil
}

func emulatorTarget(emu *emulator.Emulator) (*target, error) {
	env := emu.Env()
	caPEM := emu.CAPEM()
	tr, err := dps.NewTransport(caPEM)
	if err != nil {
		return nil, err
	}
	client, err := dps.NewClientFromConnectionString(env.DPSConnectionString, clientOptions(tr))
	if err != nil {
		return nil, err
	}
	return &target{
		client:               client,
		name:                 "emulator (" + client.Host() + ")",
		emulated:             true,
		idScope:              env.IDScope,
		deviceEndpoint:       env.DeviceEndpoint,
		mqttEndpoint:         env.MQTTEndpoint,
		hubConnectionStrings: env.HubConnectionStrings,
		hubMQTT:              hubMQTTEndpoints(env.HubConnectionStrings, env.HubMQTTEndpoints),
		transport:            tr,
		caPEM:                caPEM,
		emu:                  emu,
	}, nil
}

func clientOptions(tr *http.Client) *dps.ClientOptions {
	o := &dps.ClientOptions{}
	o.Transport = tr
	return o
}

// readCA reads --ca-file or $DPS_CA_FILE, if either is set.
func (a *app) readCA() ([]byte, error) {
	file, source := a.caFile, "--ca-file"
	if file == "" {
		file, source = os.Getenv("DPS_CA_FILE"), "$DPS_CA_FILE"
	}
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("the CA file from %s cannot be read: %v", source, err)
	}
	if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return nil, usagef("the CA file %s (from %s) holds no PEM certificate; give the CA certificate file (for the emulator: the DPS_CA_FILE line of its emulator.env)", file, source)
	}
	return b, nil
}

// hubConnectionStringsFromEnv collects $IOTHUB_CONNECTION_STRING and
// $IOTHUB_CONNECTION_STRING_1, _2, ... in that order, without repeats.
func hubConnectionStringsFromEnv() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, n := range hubEnvSuffixes() {
		add(os.Getenv("IOTHUB_CONNECTION_STRING" + n))
	}
	return out
}

// openAzure resolves a DPS with ARM: --dps (with --resource-group and
// --subscription), else the target chosen last in this state dir. It signs
// in with Entra ID and, under --auth sas-from-arm and only then, reads a
// shared access key with ListKeys. The choice is remembered (names only).
func (a *app) openAzure(ctx context.Context) (*target, error) {
	q := discovery.Query{Name: a.azure.dps, ResourceGroup: a.azure.resourceGroup, Subscription: a.azure.subscription}
	auth := a.azure.auth
	if auth != authSASFromARM {
		auth = authLogin // a device code is one way to sign in: the target is the same
	}
	if q.Name == "" {
		c, ok, err := discovery.LoadChoice(a.stateDir)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, usagef("no DPS chosen yet: name one with --dps NAME (dpsconsole targets list shows the ones you can see)")
		}
		// Reopened signed in: a shared access key (c.Auth sas-from-arm)
		// is read only when --auth asks for it again, never silently.
		q = c.Query()
		a.adoptTenant(c)
	}
	caPEM, err := a.readCA()
	if err != nil {
		return nil, err
	}
	tr, err := dps.NewTransport(caPEM)
	if err != nil {
		return nil, err
	}
	s, err := a.signIn(tr)
	if err != nil {
		return nil, err
	}
	d, err := s.disc.Find(ctx, q)
	if err != nil {
		return nil, signin.Explain(err)
	}
	t, err := connectDPS(ctx, s, d, auth, tr, caPEM)
	if err != nil {
		return nil, err
	}
	if err := discovery.SaveChoice(a.stateDir, discovery.ChoiceOf(d, a.azure.tenant, auth)); err != nil {
		fmt.Fprintf(a.err, "warning: %v\n", err) // the target still works; only the next start will not reopen it
	}
	return t, nil
}

// connectDPS makes the target of a DPS found with ARM: bearer tokens from
// s (authLogin), or a shared access key read with ListKeys (authSASFromARM,
// only when asked: the key stays in memory).
func connectDPS(ctx context.Context, s *signedIn, d discovery.DPS, auth string, tr *http.Client, caPEM []byte) (*target, error) {
	t := &target{
		name:           "DPS " + d.Name + " (" + d.ServiceHost + ")",
		idScope:        d.IDScope,
		deviceEndpoint: cmp.Or(d.DeviceHost, globalDeviceEndpoint),
		mqttEndpoint:   os.Getenv("DPS_MQTT_ENDPOINT"),
		hubMQTT:        hubMQTTFromEnv(),
		transport:      tr,
		caPEM:          caPEM,
		auth:           auth,
		credential:     s.cred,
	}
	for _, h := range d.Hubs {
		t.linkedHubs = append(t.linkedHubs, h.Host)
	}
	opts := clientOptions(tr)
	opts.ResourceID = d.ResourceID
	var err error
	if auth == authSASFromARM {
		cs, err := s.disc.ServiceConnectionString(ctx, d, "")
		if err != nil {
			return nil, err
		}
		if t.client, err = dps.NewClientFromConnectionString(cs, opts); err != nil {
			return nil, fmt.Errorf("the shared access policy ARM listed for %s is not usable: %v", d.Name, err)
		}
		t.hubConnectionStrings = hubConnectionStringsFromEnv() // ARM masks the hubs' keys
	} else if t.client, err = dps.NewClient(d.ServiceHost, s.cred, opts); err != nil {
		return nil, fmt.Errorf("DPS %s: %v", d.Name, err)
	}
	return t, nil
}
