package driver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/helper/pluginutils/hclspecutils"
	"github.com/hashicorp/nomad/helper/pluginutils/hclutils"
	"github.com/hashicorp/nomad/helper/testlog"
	"github.com/shoenig/test/must"
	"github.com/zclconf/go-cty/cty/msgpack"
)

// decodePluginConfig decodes an agent's plugin config block (as a map) the way the Nomad
// agent and the driver do: through the driver's spec, which fills in the defaults, into
// msgpack, into a Config.
func decodePluginConfig(t *testing.T, block map[string]any) Config {
	t.Helper()
	spec, diags := hclspecutils.Convert(configSpec)
	must.False(t, diags.HasErrors(), must.Sprint(diags))
	val, diags, errs := hclutils.ParseHclInterface(block, spec, nil)
	must.False(t, diags.HasErrors(), must.Sprint(diags))
	must.SliceEmpty(t, errs)
	raw, err := msgpack.Marshal(val, val.Type())
	must.NoError(t, err)
	c, err := decodeConfig(raw)
	must.NoError(t, err)
	return c
}

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	must.Eq(t, defaultConfig, decodePluginConfig(t, map[string]any{}))
	c, err := decodeConfig(nil)
	must.NoError(t, err)
	must.Eq(t, defaultConfig, c)
	d := New(testlog.HCLogger(t)).(*Driver)
	t.Cleanup(d.Shutdown)
	must.Eq(t, defaultConfig, d.config)
}

// A configuration that sets a list does not write into the defaults' list.
func TestConfig_DecodeLeavesDefaultsAlone(t *testing.T) {
	t.Parallel()
	want := slices.Clone(defaultConfig.InternalNetworks)
	c := decodePluginConfig(t, map[string]any{"internal_networks": []any{"10.9.0.0/16"}, "pids_limit": 64})
	must.Eq(t, []string{"10.9.0.0/16"}, c.InternalNetworks)
	must.Eq(t, 64, c.PidsLimit)
	must.Eq(t, defaultConfig.SlugDir, c.SlugDir)
	must.Eq(t, want, defaultConfig.InternalNetworks)
}

// docs/driver.md's table of the plugin configuration lists every key with its default.
func TestConfig_DocumentedDefaults(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../docs/driver.md")
	must.NoError(t, err)
	defer f.Close()
	documented := map[string]string{}
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "## Plugin configuration":
			inTable = true
		case inTable && strings.HasPrefix(line, "## "):
			inTable = false
		case inTable && strings.HasPrefix(line, "| `"):
			cells := strings.Split(line, " | ")
			must.Greater(t, 2, len(cells), must.Sprintf("table row %q", line))
			documented[strings.Trim(cells[0], "| `")] = strings.Trim(cells[1], "`")
		}
	}
	must.NoError(t, sc.Err())

	want := map[string]string{}
	for name, spec := range configSpec.GetObject().GetAttributes() {
		want[name] = "none"
		if def := spec.GetDefault(); def != nil {
			want[name] = docValue(t, def.GetDefault().GetLiteral().GetValue())
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, ok := documented[k]
		must.True(t, ok, must.Sprintf("docs/driver.md does not document the plugin key %s", k))
		must.Eq(t, want[k], got, must.Sprintf("docs/driver.md's default of %s", k))
	}
	must.MapLen(t, len(want), documented, must.Sprint("docs/driver.md documents keys the plugin does not have"))
}

// docValue is how docs/driver.md writes an HCL literal: strings bare, lists as HCL.
func docValue(t *testing.T, literal string) string {
	t.Helper()
	var v any
	must.NoError(t, json.Unmarshal([]byte(literal), &v))
	switch v := v.(type) {
	case string:
		return v
	case []any:
		items := make([]string, len(v))
		for i, e := range v {
			items[i] = fmt.Sprintf("%q", e)
		}
		return "[" + strings.Join(items, ", ") + "]"
	default:
		return literal
	}
}
