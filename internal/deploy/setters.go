package deploy

import nomadapi "github.com/hashicorp/nomad/api"

// setRelease stamps a job with its release number and what made it.
func setRelease(job *nomadapi.Job, version int, description string) {
	release := ReleaseName(version)
	job.Meta[MetaRelease] = release
	job.Meta[MetaDescription] = description
	for _, tg := range job.TaskGroups {
		for _, t := range tg.Tasks {
			if t.Meta == nil {
				t.Meta = map[string]string{}
			}
			t.Meta[MetaRelease] = release
			for _, s := range t.Services {
				if s.Meta != nil {
					s.Meta["release"] = release
				}
			}
		}
	}
}

// setEnvPath points the job's env templates at another environment.
func setEnvPath(job *nomadapi.Job, path string) {
	if path == "" {
		delete(job.Meta, MetaEnv)
	} else {
		job.Meta[MetaEnv] = path
	}
	for _, tg := range job.TaskGroups {
		for _, t := range tg.Tasks {
			t.Templates = []*nomadapi.Template{envTemplate(t.Name, path)}
		}
	}
}
