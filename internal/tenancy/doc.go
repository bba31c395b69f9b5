// Package tenancy turns a grid's ACLs on and hands out its tokens: it bootstraps Nomad's
// and Consul's ACL systems once, creates the policies of package policies, gives each
// component a token with only those, and makes each app a Nomad namespace of its own with
// a deploy policy and a policy its dynos' workload identity is bound to.
package tenancy
