package router

import "testing"

func TestAllocIDOf(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"_nomad-task-5229c7f8-376b-3ccc-edd9-981e238f7033-group-web-shop-web-http": "5229c7f8-376b-3ccc-edd9-981e238f7033",
		"_nomad-task-5229c7f8-376b-3ccc-edd9-981e238f7033-web-shop-web-http":       "5229c7f8-376b-3ccc-edd9-981e238f7033",
		"_nomad-task-5229c7f8-376b-3ccc-edd9-981e238f7033":                         "5229c7f8-376b-3ccc-edd9-981e238f7033",
		"shop-web-web.1": "", // registered by hand, not by Nomad
		"_nomad-task-5229c7f8-376b-3ccc-edd9-981e238f7033x-web":      "",
		"_nomad-task-5229C7F8-376b-3ccc-edd9-981e238f7033-web":       "",
		"_nomad-task-5229c7f8+376b-3ccc-edd9-981e238f7033-web":       "",
		"_nomad-task-../../v1/acl/tokens-0000-0000-0000-00000000000": "",
		"_nomad-task-": "",
	} {
		got, ok := allocIDOf(id)
		if got != want || ok != (want != "") {
			t.Errorf("allocIDOf(%q) = %q, %v; want %q", id, got, ok, want)
		}
	}
}
