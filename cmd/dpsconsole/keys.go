package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dpsconsole/dpsconsole/keys"
	"github.com/spf13/cobra"
)

// groupKeyEnv names the environment variable that may hold the group key.
const groupKeyEnv = "DPS_GROUP_KEY"

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Derive and generate device keys, sign SAS tokens",
		Long: `Offline key tools: derive device keys for a symmetric-key enrollment group,
generate a new key, sign a SAS token. Nothing here touches the network.`,
		Args: cobra.NoArgs,
		// A flag that picks a DPS would be silently ignored; refuse it, so an
		// operator who meant it to matter learns that it cannot. The same
		// settings from the environment are not the operator's ask here.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if f := changedTargetFlag(cmd); f != "" {
				return usagef("%q works offline: --%s has no effect on it; leave it out", cmd.CommandPath(), f)
			}
			return nil
		},
	}
	cmd.AddCommand(newKeysDeriveCmd(a), newKeysGenerateCmd(a), newKeysSASCmd(a))
	return cmd
}

type deriveFlags struct {
	groupKey, groupKeyFile string
	ids                    []string
	input, outputFile      string
	format                 string
}

func newKeysDeriveCmd(a *app) *cobra.Command {
	var f deriveFlags
	cmd := &cobra.Command{
		Use:   "derive",
		Short: "Derive device keys from an enrollment-group key",
		Long: `Derive the device key of each registration ID from a symmetric-key enrollment
group's primary or secondary key: base64(HMAC-SHA256(group key, registration ID)).

The group key comes from --group-key-file, from $DPS_GROUP_KEY, or from
--group-key. Prefer the first two: a key typed on a command line ends up in
your shell history and is visible to other users in the process list.

With one --registration-id the bare device key and a newline go to stdout,
so $(dpsconsole keys derive ...) works. With several, or with --input, each
valid ID gets a record (CSV with a registration_id,device_key header, or JSON
lines) in input order. Every invalid line of --input is reported on stderr
with its line number and the reason, and the exit status is then 1; an
invalid --registration-id is a command-line mistake (exit 2, no keys).

Registration IDs are derived over their exact bytes: "Dev1" and "dev1" get
different keys. Upper-case IDs work but draw a warning; use lower case.`,
		Example: `  dpsconsole keys derive --group-key-file group.key --registration-id sn-007
  DPS_GROUP_KEY=... dpsconsole keys derive --registration-id a --registration-id b
  dpsconsole keys derive --group-key-file group.key --input ids.txt --output-file keys.csv
  seq -f 'dev-%g' 1000 | dpsconsole keys derive --group-key-file group.key --input - --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDerive(cmd, a, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.groupKeyFile, "group-key-file", "", "file holding the group key (base64)")
	fl.StringVar(&f.groupKey, "group-key", "", "the group key (base64); lands in shell history, prefer --group-key-file or $"+groupKeyEnv)
	fl.StringArrayVar(&f.ids, "registration-id", nil, "registration ID to derive a key for; repeat for several")
	fl.StringVar(&f.input, "input", "", "file of registration IDs, one per line ('-' for stdin); blank lines and # comments are skipped")
	fl.StringVar(&f.outputFile, "output-file", "", "write the keys to this file (created 0600) instead of stdout")
	fl.StringVar(&f.format, "format", "csv", "record format for several IDs: csv or json (JSON lines)")
	return cmd
}

func runDerive(cmd *cobra.Command, a *app, f deriveFlags) error {
	switch {
	case f.input == "" && len(f.ids) == 0:
		return usagef("give --registration-id ID (repeatable) or --input FILE ('-' for stdin)")
	case f.input != "" && len(f.ids) > 0:
		return usagef("give --registration-id or --input, not both")
	}
	if f.input != "" && f.input != "-" && f.outputFile != "" && sameFile(f.input, f.outputFile) {
		return usagef("--output-file is the --input file; writing would erase the IDs before they are read")
	}
	format := keys.Format(f.format)
	if format != keys.FormatCSV && format != keys.FormatJSONLines {
		return usagef("unknown --format %q; use csv or json", f.format)
	}
	if err := checkIDs("--registration-id", f.ids); err != nil {
		return err
	}
	groupKey, err := readGroupKey(f)
	if err != nil {
		return err
	}
	d, err := keys.NewDeriver(groupKey)
	if err != nil {
		return err
	}
	var in io.Reader
	if f.input != "" {
		var closeIn func() error
		if in, closeIn, err = openInput("--input", f.input, a.in); err != nil {
			return err
		}
		defer closeIn()
	}
	out, closeOut, err := openOutput(a, f.outputFile)
	if err != nil {
		return err
	}
	var invalid int
	switch {
	case in != nil:
		invalid, err = deriveStream(a, d, in, out, format)
	case len(f.ids) == 1 && !cmd.Flags().Changed("format"):
		err = deriveOne(a, d, f.ids[0], out)
	default:
		err = deriveIDs(a, d, f.ids, out, format)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if invalid > 0 {
		return silentExit{exitInvalid}
	}
	return nil
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// readGroupKey takes the group key from exactly one of its three sources.
func readGroupKey(f deriveFlags) (keys.Key, error) {
	var text, source string
	switch {
	case f.groupKey != "" && f.groupKeyFile != "":
		return keys.Key{}, usagef("give --group-key or --group-key-file, not both")
	case f.groupKeyFile != "":
		b, err := readInput("--group-key-file", f.groupKeyFile)
		if err != nil {
			return keys.Key{}, err
		}
		text, source = string(b), "--group-key-file "+shown(f.groupKeyFile)
	case f.groupKey != "":
		text, source = f.groupKey, "--group-key"
	case os.Getenv(groupKeyEnv) != "":
		text, source = os.Getenv(groupKeyEnv), "$"+groupKeyEnv
	default:
		return keys.Key{}, usagef("give the group key with --group-key-file FILE or $%s (or --group-key, which lands in shell history)", groupKeyEnv)
	}
	k, err := keys.ParseKey(text)
	if err != nil {
		return keys.Key{}, usagef("group key from %s: %w", source, err)
	}
	return k, nil
}

// openOutput returns stdout, or the named file created (or truncated) with
// mode 0600 since it will hold device keys.
func openOutput(a *app, name string) (io.Writer, func() error, error) {
	if name == "" {
		return a.out, func() error { return nil }, nil
	}
	file, err := openPrivate(name, os.O_TRUNC)
	if err != nil {
		return nil, nil, fileError("create", "--output-file", name, err)
	}
	return file, file.Close, nil
}

// deriveOne prints the bare key of one (valid) ID.
func deriveOne(a *app, d *keys.Deriver, id string, out io.Writer) error {
	k, err := d.DeviceKey(id)
	if err != nil {
		return err
	}
	if w := keys.RegistrationIDWarning(id); w != "" {
		fmt.Fprintf(a.err, "warning: registration ID %q: %s\n", id, w)
	}
	_, err = fmt.Fprintln(out, k.Base64())
	return err
}

// deriveIDs writes a record for every (valid) ID given on the command line,
// in order.
func deriveIDs(a *app, d *keys.Deriver, ids []string, out io.Writer, format keys.Format) error {
	var buf []byte
	if format == keys.FormatCSV {
		buf = append(buf, keys.CSVHeader...)
	}
	var key []byte
	var err error
	for _, id := range ids {
		if key, err = d.AppendDeviceKey(key[:0], []byte(id)); err != nil {
			return err
		}
		if w := keys.RegistrationIDWarning(id); w != "" {
			fmt.Fprintf(a.err, "warning: registration ID %q: %s\n", id, w)
		}
		buf = format.AppendRecord(buf, []byte(id), key)
	}
	_, err = out.Write(buf)
	return err
}

// deriveStream writes a record for every valid ID read from in, in order,
// and reports every invalid line on stderr.
func deriveStream(a *app, d *keys.Deriver, in io.Reader, out io.Writer, format keys.Format) (invalid int, err error) {
	report := bufio.NewWriter(a.err) // a million bad lines must not mean a million small writes
	defer report.Flush()
	st, err := d.DeriveStream(in, out, keys.StreamOptions{
		Format:    format,
		OnInvalid: func(e keys.LineError) { fmt.Fprintln(report, e) },
	})
	if err != nil {
		return st.Invalid, err
	}
	if st.UpperCase > 0 {
		fmt.Fprintf(report, "warning: %d registration IDs have upper-case letters (the first on line %d): %s\n", st.UpperCase, st.FirstUpperCase, keys.UpperCaseWarning)
	}
	if st.Invalid > 0 {
		fmt.Fprintf(report, "%d keys derived; %d invalid lines (listed above) got no key\n", st.Derived, st.Invalid)
	}
	return st.Invalid, nil
}

func newKeysGenerateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new random group or device key (64 bytes, base64), as DPS generates",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.out, keys.GenerateKey().Base64())
			return err
		},
	}
}

func newKeysSASCmd(a *app) *cobra.Command {
	var resource, key, keyFile, policy string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "sas",
		Short: "Sign a SAS token for a device, a DPS service or an IoT hub",
		Long: `Print a shared access signature token signed with a key. The resource is
given unencoded; it is URL-encoded in the token as the Python SDK does.

  device registration:  --resource {idScope}/registrations/{registrationId} --policy registration
                        with the device key (derived or individual)
  DPS service API:      --resource {dps host} --policy provisioningserviceowner
  IoT Hub device:       --resource {hub host}/devices/{deviceId}, no --policy

--key-file keeps the key out of shell history.`,
		Example: `  dpsconsole keys sas --resource 0ne00000A0A/registrations/sn-007 --policy registration --key-file device.key`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch {
			case resource == "":
				return usagef("give --resource URI")
			case key == "" && keyFile == "":
				return usagef("give the signing key with --key-file FILE or --key KEY")
			case key != "" && keyFile != "":
				return usagef("give --key or --key-file, not both")
			case ttl <= 0:
				return usagef("give a positive --ttl, e.g. 1h")
			}
			source := "--key"
			if keyFile != "" {
				b, err := readInput("--key-file", keyFile)
				if err != nil {
					return err
				}
				key, source = string(b), "--key-file "+shown(keyFile)
			}
			k, err := keys.ParseKey(key)
			if err != nil {
				return usagef("key from %s: %w", source, err)
			}
			_, err = fmt.Fprintln(a.out, keys.SignSAS(resource, k, policy, time.Now().Add(ttl)))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&resource, "resource", "", "resource URI the token is for (unencoded)")
	fl.StringVar(&key, "key", "", "signing key (base64); lands in shell history, prefer --key-file")
	fl.StringVar(&keyFile, "key-file", "", "file holding the signing key (base64)")
	fl.StringVar(&policy, "policy", "", "shared access policy name (skn); leave out for IoT Hub device tokens")
	fl.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	allowEmpty(fl, "policy") // --policy "" signs a hub device token, as leaving it out does
	return cmd
}
