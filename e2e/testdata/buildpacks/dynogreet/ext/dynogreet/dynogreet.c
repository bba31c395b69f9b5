#include <ruby.h>

static VALUE hello(VALUE self) {
	return rb_str_new_cstr("hello from a native extension");
}

void Init_dynogreet(void) {
	VALUE m = rb_define_module("Dynogreet");
	rb_define_module_function(m, "hello", hello, 0);
}
