// Chassis rows: a Chassis with one Encap per address, as ovn-controller
// registers a chassis, for tests of what reads them.

package sbtest

// AddChassis adds a Chassis called name with a geneve Encap for each of
// ips (at least one), with ovn-sbctl chassis-add and create Encap.
func (sb *SB) AddChassis(name string, ips ...string) {
	sb.t.Helper()
	if len(ips) == 0 {
		sb.t.Fatalf("AddChassis %s: a chassis needs at least one Encap IP", name)
	}
	sb.Sbctl("chassis-add", name, "geneve", ips[0])
	for _, ip := range ips[1:] {
		sb.Sbctl("--", "--id=@e", "create", "Encap", "type=geneve", "ip="+ip, "chassis_name="+name,
			"--", "add", "Chassis", name, "encaps", "@e")
	}
}
