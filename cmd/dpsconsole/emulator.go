package main

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps/emulator"
)

func newEmulatorCmd(a *app) *cobra.Command {
	var (
		dataDir, httpsAddr, mqttAddr, seed, throttle string
		entraAddr, deviceCodeAs                      string
		hubAddrs                                     []string
		delay                                        time.Duration
		faultRate                                    float64
		entra, disableLocalAuth                      bool
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run the built-in DPS + IoT Hub emulator in the foreground",
		Long: `Runs the local Device Provisioning Service + IoT Hub emulator until Ctrl-C.

On start it writes emulator.env (mode 0600: it holds keys) into its data dir and
prints the same KEY=VALUE lines: DPS_CONNECTION_STRING, DPS_ID_SCOPE,
DPS_DEVICE_ENDPOINT, DPS_MQTT_ENDPOINT, DPS_CA_FILE, IOTHUB_CONNECTION_STRING[_N]
and IOTHUB_MQTT_ENDPOINT[_N] (with --mqtt off, no MQTT endpoint lines).
Other programs trust the emulator through DPS_CA_FILE (for Node:
NODE_EXTRA_CA_CERTS). The official SDKs, which cannot take a port, need the
listeners on port 443 (run as root, e.g. --https 127.0.0.1:443 --hub 127.0.0.2:443
--hub 127.0.0.3:443).

State (SQLite) and the CA persist in the data dir; one emulator at a time may
use a data dir. The demo seed (--seed demo, written only into a new data dir):
the tutorial group mylegacydevices (the tutorial's key, static to hub 1), the
hashed group hashed-fleet with 36 registered devices over both hubs, and the
12 orphaned registration records (with their hub devices) of the deleted group
retired-sensors.

DPS and each hub also serve MQTT 3.1.1: over TLS on their own listener (port
8883 on the same host when their HTTPS is on 443, else a free port, named in
DPS_MQTT_ENDPOINT / IOTHUB_MQTT_ENDPOINT_N) and over WebSockets at
/$iothub/websocket on their HTTPS port. --mqtt ADDR moves DPS's MQTT listener;
--mqtt off serves no MQTT.

--entra adds a Microsoft Entra ID-like sign-in and a small Azure Resource
Manager surface on one more HTTPS listener (--entra-addr, same CA): the
OpenID configuration, keys and OAuth2 token endpoint of a tenant (client
credentials and device code), and the subscription, resource group and DPS
resource describing this emulator (with its linked hubs and listkeys). The DPS
and hub service APIs then take its bearer tokens besides SAS. Two service
principals exist, each with a client secret, written to emulator.env:
  AZURE_CLIENT_ID / AZURE_CLIENT_SECRET            Contributor: Device Provisioning
      Service Data Contributor, IoT Hub Registry/Twin/Data Contributor, and
      Contributor on the DPS resource (may list its keys)
  DPS_READER_CLIENT_ID / DPS_READER_CLIENT_SECRET  Reader: Device Provisioning
      Service Data Reader, IoT Hub Data Reader, Reader (listkeys refused)
with AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, AZURE_RESOURCE_MANAGER_ENDPOINT,
AZURE_SUBSCRIPTION_ID, DPS_NAME and DPS_RESOURCE_GROUP. azidentity reads the
AZURE_* lines itself (give DisableInstanceDiscovery and trust DPS_CA_FILE).
A device-code sign-in is approved by the emulator itself once polled, as the
Contributor (--device-code reader|decline changes that). The tenant, the
principals and the token-signing key (entra-key.pem) persist in the data dir.
--disable-local-auth then refuses SAS on the DPS and hub service APIs (401),
as a hub with local authentication disabled does; devices keep their SAS.`,
		Example: `  dpsconsole emulator
  dpsconsole emulator --https 127.0.0.1:443 --hub 127.0.0.2:443 --hub 127.0.0.3:443
  dpsconsole emulator --throttle 1000/min --fault-rate 0.05
  dpsconsole emulator --entra`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The global flags that pick a DPS to talk to: the emulator is one.
			if f := changedTargetFlag(cmd, "ca-file"); f != "" {
				return usagef("--%s picks a DPS to talk to; the emulator is one, and takes none (its Entra ID sign-in is --entra)", f)
			}
			perMinute, err := parseThrottle(throttle)
			if err != nil {
				return err
			}
			if !(faultRate >= 0 && faultRate <= 1) { // NaN too
				return usagef("invalid --fault-rate %v: give the fraction of DPS requests that fail, from 0 to 1 (0.05 fails one in twenty)", faultRate)
			}
			mqttAddrs := []string{mqttAddr}
			if mqttAddr == emulator.MQTTOff {
				mqttAddrs = nil // no listener, not an address
			}
			if err := checkAddrs(map[string][]string{"--https": {httpsAddr}, "--hub": hubAddrs, "--mqtt": mqttAddrs}); err != nil {
				return err
			}
			if (entraAddr != "" || deviceCodeAs != "" || disableLocalAuth) && !entra {
				return usagef("--entra-addr, --device-code and --disable-local-auth need --entra")
			}
			if err := checkAddrs(map[string][]string{"--entra-addr": {entraAddr}}); err != nil {
				return err
			}
			switch deviceCodeAs {
			case "", emulator.DeviceCodeContributor, emulator.DeviceCodeReader, emulator.DeviceCodeDecline:
			default:
				return usagef("--device-code %q: use contributor, reader or decline", deviceCodeAs)
			}
			if seed != "demo" && seed != "none" {
				return usagef("--seed %q: use demo or none", seed)
			}
			if delay < 0 {
				return usagef("--assignment-delay %v is negative", delay)
			}
			if dataDir == "" {
				dataDir = filepath.Join(a.stateDir, "emulator")
			}
			ctx := cmd.Context()
			emu, err := emulator.Start(ctx, emulator.Options{
				DataDir:           dataDir,
				HTTPSAddr:         httpsAddr,
				HubAddrs:          hubAddrs,
				MQTTAddr:          mqttAddr,
				Seed:              seed,
				AssignmentDelay:   delay,
				ThrottlePerMinute: perMinute,
				FaultRate:         faultRate,
				Entra:             entra,
				EntraAddr:         entraAddr,
				DeviceCodeAs:      deviceCodeAs,
				DisableLocalAuth:  disableLocalAuth,
				Logger:            slog.New(slog.NewTextHandler(a.err, &slog.HandlerOptions{Level: slog.LevelInfo})),
			})
			if err != nil {
				return err
			}
			fmt.Fprint(a.out, emu.Env().String())
			fmt.Fprintf(a.err, "emulator running (data in %s; the lines above are in %s); Ctrl-C stops it\n",
				dataDir, filepath.Join(dataDir, emulator.EnvFile))
			<-ctx.Done()
			fmt.Fprintln(a.err, "stopping the emulator")
			return emu.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "data dir (default <state-dir>/emulator)")
	f.StringVar(&httpsAddr, "https", "127.0.0.1:8443", "address of the DPS listener (service and device APIs)")
	f.StringArrayVar(&hubAddrs, "hub", nil, "address of a linked IoT hub's listener; repeat for each hub (default two hubs on 127.0.0.1, ports kept across restarts)")
	f.StringVar(&mqttAddr, "mqtt", "", "address of DPS's MQTT/TLS listener, or off for no MQTT (default: port 8883 when DPS is on 443, else a free port)")
	f.StringVar(&seed, "seed", "demo", "data for a new data dir: demo or none")
	f.DurationVar(&delay, "assignment-delay", time.Second, "how long a registration stays \"assigning\"")
	f.StringVar(&throttle, "throttle", "", "answer 429 + Retry-After past N operations a minute, e.g. 1000/min (as DPS: service calls and registrations; polls are not counted)")
	f.Float64Var(&faultRate, "fault-rate", 0, "fraction of DPS requests that fail with 500 or a dropped connection")
	f.BoolVar(&entra, "entra", false, "serve an Entra ID-like sign-in and ARM for this emulator; the DPS and hub APIs then take bearer tokens")
	f.StringVar(&entraAddr, "entra-addr", "", "address of the Entra/ARM listener (default 127.0.0.1, a free port kept across restarts)")
	f.StringVar(&deviceCodeAs, "device-code", "", "who a device-code sign-in is approved as: contributor (default), reader, or decline")
	f.BoolVar(&disableLocalAuth, "disable-local-auth", false, "with --entra: refuse shared access signatures on the DPS and hub service APIs; only bearer tokens")
	allowEmpty(f, "mqtt", "throttle", "entra-addr", "device-code") // "" is their default: the default MQTT address, no throttling
	return cmd
}

// checkAddrs refuses a listener address that is not host:port, naming the
// flag ("" is the default address); a port in use is found only on listening.
func checkAddrs(flags map[string][]string) error {
	for _, flag := range slices.Sorted(maps.Keys(flags)) {
		for _, addr := range flags[flag] {
			if addr == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
				return usagef("invalid %s %q: give host:port, e.g. 127.0.0.1:8443 (port 0 picks a free one)", flag, addr)
			}
		}
	}
	return nil
}

// parseThrottle reads "N/min" or "N"; "" and "0" mean off.
func parseThrottle(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	num := strings.TrimSuffix(strings.TrimSpace(s), "/min")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, usagef("--throttle %q: give operations a minute, e.g. 1000/min", s)
	}
	return n, nil
}
