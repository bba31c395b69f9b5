# The meter follows every allocation of every namespace through the event stream and the
# allocation list. It reads jobs; it changes nothing.
namespace "*" {
  capabilities = ["read-job"]
}
