package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/hub"
)

func newHubCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Show devices and twins in the IoT hubs, change twins, call direct methods",
		Long: `Work with a provisioned device in its IoT hub: show its identity and twin,
change its twin's desired properties and tags, call a direct method on it.

The hub is the one the device's registration record names (its assigned hub),
or --hub. Its service connection string comes from $IOTHUB_CONNECTION_STRING
(and $IOTHUB_CONNECTION_STRING_1, _2, ...); with the embedded emulator, from
the emulator itself.`,
	}
	device := &cobra.Command{Use: "device", Short: "Device identities in the hub"}
	device.AddCommand(newHubDeviceShowCmd(a))
	twin := &cobra.Command{Use: "twin", Short: "Device twins"}
	twin.AddCommand(newHubTwinUpdateCmd(a))
	method := &cobra.Command{Use: "method", Short: "Direct methods"}
	method.AddCommand(newHubMethodInvokeCmd(a))
	cmd.AddCommand(device, twin, method)
	return cmd
}

// hubFlags are the flags every hub command has.
type hubFlags struct {
	hub, output string
}

func (f *hubFlags) add(cmd *cobra.Command) {
	addOutputFlag(cmd, &f.output)
	cmd.Flags().StringVar(&f.hub, "hub", "", "the hub's host name (default: the assigned hub in the device's registration record)")
}

// withHub checks --output, then runs fn with the registry client of the hub
// deviceID is in.
func (a *app) withHub(ctx context.Context, f hubFlags, deviceID string, fn func(*hub.RegistryClient) error) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	return a.withTarget(ctx, func(t *target) error {
		reg, err := openHub(ctx, t, f.hub, deviceID)
		if err != nil {
			return err
		}
		return fn(reg)
	})
}

// openHub returns the registry client of hubHost, or, when that is "", of
// the hub deviceID's registration record names.
func openHub(ctx context.Context, t *target, hubHost, deviceID string) (*hub.RegistryClient, error) {
	if hubHost == "" {
		s, err := t.client.GetRegistrationState(ctx, deviceID)
		if dps.IsNotFound(err) {
			return nil, fmt.Errorf("%s has no registration record %q, so the hub of device %q is unknown; give its hub with --hub", t.name, deviceID, deviceID)
		}
		if err != nil {
			return nil, registrationError(deviceID, err)
		}
		if s.AssignedHub == "" {
			return nil, fmt.Errorf("registration record %q is %s and names no hub; give the device's hub with --hub", deviceID, s.Status)
		}
		hubHost = s.AssignedHub
	}
	return t.registry(hubHost)
}

func hubError(what, deviceID string, reg *hub.RegistryClient, err error) error {
	if hub.IsNotFound(err) && !strings.Contains(err.Error(), "DeviceNotOnline") {
		return fmt.Errorf("device %q is not in hub %s (%s)", deviceID, reg.Host(), hub.ErrorMessage(err))
	}
	return fmt.Errorf("%s of device %q in %s: %s", what, deviceID, reg.Host(), hub.ErrorMessage(err))
}

// deviceAndTwin is the JSON of "hub device show": both of the hub's
// documents, as it sends them.
type deviceAndTwin struct {
	Device hub.Device `json:"device"`
	Twin   hub.Twin   `json:"twin"`
}

func newHubDeviceShowCmd(a *app) *cobra.Command {
	var f hubFlags
	var showKeys bool
	cmd := &cobra.Command{
		Use:   "show DEVICE-ID",
		Short: "Show a device's identity and twin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, id := cmd.Context(), args[0]
			return a.withHub(ctx, f, id, func(reg *hub.RegistryClient) error {
				d, err := reg.GetDevice(ctx, id)
				if err != nil {
					return hubError("read the identity", id, reg, err)
				}
				tw, err := reg.GetTwin(ctx, id)
				if err != nil {
					return hubError("read the twin", id, reg, err)
				}
				if !showKeys && d.Authentication != nil && d.Authentication.SymmetricKey != nil {
					auth := *d.Authentication
					auth.SymmetricKey = nil
					d.Authentication = &auth
				}
				if f.output == outputJSON {
					return writeJSON(a.out, deviceAndTwin{d, tw})
				}
				auth, primary, secondary := "", "", ""
				if d.Authentication != nil {
					auth = d.Authentication.Type
					if k := d.Authentication.SymmetricKey; k != nil {
						primary, secondary = k.PrimaryKey.Reveal(), k.SecondaryKey.Reveal()
					}
				}
				fields(a.out,
					"Device ID", d.DeviceID,
					"Hub", reg.Host(),
					"Status", d.Status,
					"Connection state", d.ConnectionState,
					"Last activity (UTC)", timeCell(d.LastActivityTime),
					"Authentication", auth,
					"Primary key", primary,
					"Secondary key", secondary,
					"Generation ID", d.GenerationID,
					"Device ETag", d.ETag,
				)
				printTwin(a, tw)
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&showKeys, "show-keys", false, "print the device's symmetric keys")
	return cmd
}

// printTwin prints the twin part of a show: its version and ETag, tags,
// and each property set with its $version.
func printTwin(a *app, tw hub.Twin) {
	var desired, reported dps.TwinCollection
	if tw.Properties != nil {
		desired, reported = tw.Properties.Desired, tw.Properties.Reported
	}
	fields(a.out,
		"Twin ETag", tw.ETag,
		"Twin version", strconv.FormatInt(tw.Version, 10),
		"Tags", orEmpty(jsonCell(tw.Tags)),
		"Desired properties", propertiesCell(desired),
		"Reported properties", propertiesCell(reported),
	)
}

// propertiesCell is a property set on one line, "{...} ($version n)".
func propertiesCell(c dps.TwinCollection) string {
	cell := c.Compact()
	if v := c["$version"]; v != nil {
		cell += fmt.Sprintf(" ($version %v)", v)
	}
	return cell
}

func orEmpty(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// jsonObjectFlag decodes a flag's JSON object (numbers kept exact).
func jsonObjectFlag(name, value string) (dps.TwinCollection, error) {
	c, err := dps.ParseTwinCollection(value)
	if err != nil {
		return nil, usagef(`flag --%s %q is not a JSON object; give one such as '{"interval":30}' (a null removes that property)`, name, value)
	}
	return c, nil
}

func newHubTwinUpdateCmd(a *app) *cobra.Command {
	var f hubFlags
	var desired, tags, etag string
	cmd := &cobra.Command{
		Use:   "update DEVICE-ID --desired JSON [--tags JSON]",
		Short: "Merge desired properties and tags into a device twin",
		Long: `Merge desired properties and tags into a device twin, as IoT Hub does: objects
merge key by key, a null removes that property. The device gets the desired
change if it is connected. --etag updates only the twin version it names.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, id := cmd.Context(), args[0]
			if desired == "" && tags == "" {
				return usagef("give --desired, --tags or both: the change to merge into the twin of %q", id)
			}
			var patch hub.TwinPatch
			if desired != "" {
				c, err := jsonObjectFlag("desired", desired)
				if err != nil {
					return err
				}
				patch.Properties = &hub.TwinPatchProperties{Desired: c}
			}
			if tags != "" {
				c, err := jsonObjectFlag("tags", tags)
				if err != nil {
					return err
				}
				patch.Tags = c
			}
			var opts hub.TwinWriteOptions
			if etag != "" {
				e := azcore.ETag(etag)
				opts.IfMatch = &e
			}
			return a.withHub(ctx, f, id, func(reg *hub.RegistryClient) error {
				tw, err := reg.UpdateTwin(ctx, id, patch, &opts)
				if err != nil {
					return hubError("update the twin", id, reg, err)
				}
				if f.output == outputJSON {
					return writeJSON(a.out, tw)
				}
				fields(a.out, "Device ID", tw.DeviceID, "Hub", reg.Host())
				printTwin(a, tw)
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&desired, "desired", "", `desired properties to merge, a JSON object, e.g. '{"interval":30,"old":null}'`)
	cmd.Flags().StringVar(&tags, "tags", "", `tags to merge, a JSON object, e.g. '{"site":"oslo"}'`)
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the twin still has this ETag (from hub device show)")
	return cmd
}

func newHubMethodInvokeCmd(a *app) *cobra.Command {
	var f hubFlags
	var payload string
	var timeout, connectTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "invoke DEVICE-ID METHOD [--payload JSON]",
		Short: "Call a direct method on a connected device and print its answer",
		Long: `Call a direct method on a device connected to its hub (over MQTT) and print
the device's status and payload. A status of 300 or more from the device exits
with status 1. The hub waits --timeout for the answer and, with
--connect-timeout, that long for the device to connect.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, id, name := cmd.Context(), args[0], args[1]
			var p json.RawMessage
			if payload != "" {
				p = json.RawMessage(payload)
			}
			opts := hub.MethodOptions{ResponseTimeout: timeout, ConnectTimeout: connectTimeout}
			if err := hub.ValidateMethodCall(name, p, &opts); err != nil {
				return usagef("%v", err)
			}
			return a.withHub(ctx, f, id, func(reg *hub.RegistryClient) error {
				res, err := reg.InvokeMethod(ctx, id, name, p, &opts)
				if err != nil {
					return hubError("invoke method "+strconv.Quote(name), id, reg, err)
				}
				if f.output == outputJSON {
					if err := writeJSON(a.out, res); err != nil {
						return err
					}
				} else {
					var b bytes.Buffer
					if json.Compact(&b, res.Payload) != nil {
						b.Reset()
						b.Write(res.Payload)
					}
					fields(a.out, "Status", strconv.Itoa(res.Status), "Payload", b.String())
				}
				if res.Status >= 300 {
					fmt.Fprintf(a.err, "device %q answered method %q with status %d\n", id, name, res.Status)
					return silentExit{exitInvalid}
				}
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&payload, "payload", "", "the method's payload, JSON (default null)")
	cmd.Flags().DurationVar(&timeout, "timeout", hub.DefaultMethodResponseTimeout, "how long the hub waits for the device's answer, 5s to 5m, whole seconds")
	cmd.Flags().DurationVar(&connectTimeout, "connect-timeout", 0, "how long the hub waits for the device to connect (0: it must be connected now)")
	return cmd
}
