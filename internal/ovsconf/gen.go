package ovsconf

// The models in ./vswitchd are generated from the Open_vSwitch schema that
// Debian's openvswitch-common ships. Regenerate them with:
//
//	go generate ./internal/ovsconf
//
//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -p vswitchd -o vswitchd /usr/share/openvswitch/vswitch.ovsschema
