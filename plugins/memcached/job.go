package memcached

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/api"
)

// Meta keys on the memcached job: they tie it to the app and request that made it.
const (
	metaApp       = "dyno.app"
	metaRequestID = "dyno.addon_request_id"
	metaAddon     = "dyno.addon"
	portLabel     = "memcached"
)

// JobID is the Nomad job of one request: addon-memcached-<app>-<8 hex digits of a hash
// of app and request ID>. It depends only on its inputs, so a retry finds the same job.
func JobID(app, requestID string) string {
	sum := sha256.Sum256([]byte(app + "\x00" + requestID))
	return "addon-memcached-" + app + "-" + hex.EncodeToString(sum[:4])
}

// variablePath is the Nomad Variable holding the job's credentials; a job's tasks may
// read nomad/jobs/<job> with their workload identity.
func variablePath(jobID string) string { return "nomad/jobs/" + jobID }

// job is the Nomad job that runs one memcached.
func (a *Addon) job(jobID, app, requestID, plan string) *api.Job {
	mb := memoryMB(plan)
	job := api.NewServiceJob(jobID, jobID, a.cfg.region, 50)
	job.Datacenters = a.cfg.datacenters
	job.Namespace = &a.cfg.namespace
	job.Meta = map[string]string{metaApp: app, metaRequestID: requestID, metaAddon: Name}

	args := []string{
		"-l", "${NOMAD_IP_" + portLabel + "}", "-p", "${NOMAD_PORT_" + portLabel + "}",
		"-U", "0", "-m", strconv.Itoa(mb), "-c", "1024",
	}
	task := api.NewTask("memcached", "exec")
	task.User = "nobody"
	task.Config = map[string]interface{}{"command": a.cfg.memcachedPath, "args": args}
	task.Meta = map[string]string{metaApp: app}
	if a.cfg.auth {
		task.Config["args"] = append(args, "-Y", "${NOMAD_SECRETS_DIR}/auth")
		task.Templates = []*api.Template{{
			DestPath:     strPtr("secrets/auth"),
			EmbeddedTmpl: strPtr(fmt.Sprintf(`{{ with nomadVar %q }}{{ .username }}:{{ .password }}{{ end }}`+"\n", variablePath(jobID))),
			Perms:        strPtr("0444"),
			ChangeMode:   strPtr("restart"),
		}}
	}
	task.Resources = &api.Resources{CPU: intPtr(100), MemoryMB: intPtr(mb + 32)}
	task.KillTimeout = durPtr(5 * time.Second)

	group := api.NewTaskGroup("memcached", 1)
	group.Networks = []*api.NetworkResource{{DynamicPorts: []api.Port{{Label: portLabel, HostNetwork: a.cfg.hostNetwork}}}}
	group.RestartPolicy = &api.RestartPolicy{Attempts: intPtr(2), Interval: durPtr(time.Minute), Delay: durPtr(time.Second), Mode: strPtr("fail")}
	if a.cfg.serviceProvider != "none" {
		group.Services = []*api.Service{{
			Name:      jobID,
			PortLabel: portLabel,
			Provider:  a.cfg.serviceProvider,
			Tags:      []string{"dyno-addon", "app=" + app},
			Checks: []api.ServiceCheck{{
				Name: "memcached port", Type: "tcp", Interval: 10 * time.Second, Timeout: 2 * time.Second,
			}},
		}}
	}
	group.AddTask(task)
	job.AddTaskGroup(group)
	return job
}

func strPtr(s string) *string               { return &s }
func intPtr(i int) *int                     { return &i }
func durPtr(d time.Duration) *time.Duration { return &d }
