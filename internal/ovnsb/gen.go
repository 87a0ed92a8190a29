package ovnsb

// The models in ./sbdb are generated from the OVN_Southbound schema that
// Debian's ovn-common ships. Only SB_Global is registered with libovsdb
// (sbGlobalModel), so the other generated tables are never validated
// against a server's schema. Regenerate them with:
//
//	go generate ./internal/ovnsb
//
//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -p sbdb -o sbdb /usr/share/ovn/ovn-sb.ovsschema
