package sandbox

var seccompArchCases = []seccompCase{
	{"iopl", 0, "EPERM"},
	{"ioperm", 0, "EPERM"},
	{"uselib", 0, "EPERM"},
	{"umount", 0, "EPERM"},
	{"_sysctl", 0, "EPERM"},
	{"vm86", 0, "EPERM"},
	{"vm86old", 0, "EPERM"},
	{"create_module", 0, "EPERM"},
	{"get_kernel_syms", 0, "EPERM"},
	{"query_module", 0, "EPERM"},
	{"ustat", 0, "EPERM"},
	{"sysfs", 0, "EPERM"},
	{"fork", 0, "allow"},
	{"vfork", 0, "allow"},
	{"open", 0, "allow"},
	{"arch_prctl", 0, "allow"},
}
