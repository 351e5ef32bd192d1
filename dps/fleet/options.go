package fleet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/dpsconsole/dpsconsole/dps/device"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Options are a run's parameters as an operator gives them: the flags of
// `dpsconsole fleet` and the fields of the console's :fleet form, defined,
// parsed and checked here once for both.
type Options struct {
	Group       string
	Devices     int
	Prefix      string
	Start       int
	Transport   string
	Rate        string
	Ramp        string
	Concurrency int
	Telemetry   int
	Interval    time.Duration
	// Secondary derives the device keys from the group's secondary key;
	// GroupKeyFile names a file holding the group key instead (ReadGroupKeyFile).
	Secondary    bool
	GroupKeyFile string
}

// Option names: the flags, and the form's fields.
const (
	OptGroup        = "group"
	OptDevices      = "devices"
	OptPrefix       = "prefix"
	OptStart        = "start"
	OptTransport    = "transport"
	OptRate         = "rate"
	OptRamp         = "ramp"
	OptConcurrency  = "concurrency"
	OptTelemetry    = "telemetry"
	OptInterval     = "interval"
	OptSecondary    = "secondary"
	OptGroupKeyFile = "group-key-file"
)

// OptionNames lists the options in the order a form asks for them.
var OptionNames = []string{OptGroup, OptDevices, OptPrefix, OptStart, OptTransport, OptRate, OptRamp, OptConcurrency, OptTelemetry, OptInterval, OptSecondary, OptGroupKeyFile}

// AddFlags defines the options on fs, with their defaults and help.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Group, OptGroup, "", "the enrollment group the devices belong to (its key derives theirs)")
	fs.IntVar(&o.Devices, OptDevices, 0, "how many devices to register")
	fs.StringVar(&o.Prefix, OptPrefix, "sim", "registration IDs are PREFIX-NUMBER")
	fs.IntVar(&o.Start, OptStart, 1, "number of the first device")
	fs.StringVar(&o.Transport, OptTransport, TransportHTTPS, "how the devices talk to DPS and their hubs: https, mqtt (port 8883) or mqtt-ws (WebSockets, port 443)")
	fs.StringVar(&o.Rate, OptRate, "", "devices started a second or a minute, e.g. 50/s or 1000/min (default: DPS's quota, 1000/min; unpaced against a local emulator)")
	fs.StringVar(&o.Ramp, OptRamp, "", "a rising (or falling) rate, FROM..TO/UNIT:DURATION, e.g. 0..500/s:60s; TO holds afterwards")
	fs.IntVar(&o.Concurrency, OptConcurrency, 100, "most devices registering at once")
	fs.IntVar(&o.Telemetry, OptTelemetry, 0, "after assignment, each device sends this many telemetry messages to its hub")
	fs.DurationVar(&o.Interval, OptInterval, time.Second, "with --telemetry: the wait between a device's messages")
	fs.BoolVar(&o.Secondary, OptSecondary, false, "derive from the group's secondary key")
	fs.StringVar(&o.GroupKeyFile, OptGroupKeyFile, "", "file holding the group key (base64), instead of reading it through the service API")
}

// OptionDefaults are the options' defaults as text, as the flags show them.
func OptionDefaults() map[string]string {
	var o Options
	fs := pflag.NewFlagSet("fleet", pflag.ContinueOnError)
	o.AddFlags(fs)
	out := map[string]string{}
	for _, name := range OptionNames {
		out[name] = fs.Lookup(name).DefValue
	}
	return out
}

// OptionError is a bad option, named by its flag (a form puts the cursor
// on that field); its text is the same on the command line and in a form.
type OptionError struct {
	Option string
	Text   string
}

func (e *OptionError) Error() string { return e.Text }

func optErrorf(opt, format string, args ...any) error {
	return &OptionError{Option: opt, Text: fmt.Sprintf(format, args...)}
}

// ParseOptions reads a form's fields, name to text, through the flags'
// own parsers; a field left empty keeps its default.
func ParseOptions(fields map[string]string) (Options, error) {
	var o Options
	fs := pflag.NewFlagSet("fleet", pflag.ContinueOnError)
	o.AddFlags(fs)
	for _, name := range OptionNames {
		v := fields[name]
		if v == "" || v == fs.Lookup(name).DefValue {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			// pflag's own wording, as the command line prints it.
			return o, optErrorf(name, "invalid argument %q for %q flag: %v", v, "--"+name, err)
		}
	}
	return o, o.Check(func(name string) bool { return fs.Lookup(name).Changed })
}

// Check checks a new run's options; changed reports whether an option was
// given (--interval goes only with --telemetry).
func (o Options) Check(changed func(name string) bool) error {
	if err := o.CheckPacing(changed); err != nil {
		return err
	}
	if o.Group == "" {
		return optErrorf(OptGroup, "--group is required: the enrollment group whose key derives the device keys (dpsconsole groups list shows them)")
	}
	if o.Devices < 1 {
		return optErrorf(OptDevices, "--devices is required: how many devices to register (1 or more)")
	}
	if _, err := NewSpec("", "", o.Group, o.Prefix, o.Start, o.Devices, o.Transport); err != nil {
		opt := OptPrefix
		if o.Start < 0 {
			opt = OptStart
		}
		return optErrorf(opt, "%v", err)
	}
	if o.Secondary && o.GroupKeyFile != "" {
		return optErrorf(OptSecondary, "--secondary reads the group's secondary key through the service API; it does not go with --group-key-file")
	}
	return nil
}

// KeySource is where a new run's group key comes from (Spec.KeySource).
func (o Options) KeySource() string {
	switch {
	case o.GroupKeyFile != "":
		return KeyFile
	case o.Secondary:
		return KeySecondary
	}
	return KeyPrimary
}

// ReadGroupKeyFile reads the group key in the file path (--group-key-file).
// Its errors name the option and the file, never what the file holds; warn
// is a note when others may read the file.
func ReadGroupKeyFile(path string) (k keys.Key, warn string, err error) {
	shown := path
	if !strconv.CanBackquote(path) { // a control character would reach the terminal
		shown = strconv.Quote(path)
	}
	if path == "-" {
		return keys.Key{}, "", optErrorf(OptGroupKeyFile, "--group-key-file takes a file, not standard input (-): write the key to a file with mode 0600")
	}
	b, err := readSmallFile(path)
	if err != nil {
		return keys.Key{}, "", optErrorf(OptGroupKeyFile, "cannot read --group-key-file %s: %v", shown, err)
	}
	k, err = keys.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return keys.Key{}, "", optErrorf(OptGroupKeyFile, "--group-key-file %s does not hold a group key: %v (it should hold the group's primary or secondary key, base64, on one line)", shown, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warn = fmt.Sprintf("%s is readable by other users (mode %04o); a group key file should be 0600 (chmod 600 %s)", shown, fi.Mode().Perm(), shown)
	}
	return k, warn, nil
}

// readSmallFile reads a key file; its errors leave the path out (the
// caller names it once) and a directory says so.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.IsDir() {
			return nil, errors.New("is a directory")
		}
	}
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(f, 64<<10))
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return b, err
}

// CheckPacing checks the options a resumed run may change too: the
// transport, the pace, the concurrency and the telemetry.
func (o Options) CheckPacing(changed func(name string) bool) error {
	if _, err := device.ParseTransport(o.Transport); err != nil {
		return optErrorf(OptTransport, "--transport %q: use https, mqtt or mqtt-ws", o.Transport)
	}
	if o.Rate != "" && o.Ramp != "" {
		return optErrorf(OptRamp, "give --rate or --ramp, not both (a ramp holds its last rate afterwards)")
	}
	if o.Concurrency < 1 {
		return optErrorf(OptConcurrency, "--concurrency must be 1 or more")
	}
	if o.Telemetry < 0 {
		return optErrorf(OptTelemetry, "--telemetry must be 0 or more")
	}
	if o.Interval < 0 || (changed(OptInterval) && o.Telemetry == 0) {
		return optErrorf(OptInterval, "--interval is the wait between telemetry messages: give a duration of 0 or more, with --telemetry")
	}
	_, err := o.Schedule("")
	return err
}

// Schedule is the start schedule: --rate, --ramp, or the default for the
// device endpoint host (the quota against a real DPS, unpaced on this machine).
func (o Options) Schedule(host string) (Schedule, error) {
	switch {
	case o.Rate != "":
		r, err := ParseRate(o.Rate)
		if err != nil || r == 0 {
			return Schedule{}, optErrorf(OptRate, "--rate: give devices a second or a minute above 0, e.g. 50/s or 1000/min (not %q)", o.Rate)
		}
		return Schedule{From: r, To: r}, nil
	case o.Ramp != "":
		s, err := ParseRamp(o.Ramp)
		if err != nil {
			return Schedule{}, optErrorf(OptRamp, "--ramp: %v", err)
		}
		return s, nil
	case host == "" || IsLoopback(host):
		return Schedule{}, nil
	}
	return Quota, nil
}
