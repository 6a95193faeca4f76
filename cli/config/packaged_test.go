package config

import (
	"reflect"
	"testing"
)

// TestPackagedConfig checks the config file the Debian package installs as
// /etc/picoflow/config.yaml (scripts/deb/config.yaml): it loads, and as
// shipped it changes nothing, so that installing the package does not
// change the behaviour of picoflow for anyone on the machine.
func TestPackagedConfig(t *testing.T) {
	c, err := Load("../../scripts/deb/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.File = ""
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("packaged config = %+v, want the defaults %+v", c, Default())
	}
}
