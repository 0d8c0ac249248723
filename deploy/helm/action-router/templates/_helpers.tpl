{{/*
Names, labels and the workloads. Every workload (the router, the API
replicas, each agent) is described once by "action-router.components" and
rendered by the same templates, so the roles cannot drift apart.
*/}}

{{- define "action-router.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "action-router.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "action-router.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of everything the release makes. */}}
{{- define "action-router.labels" -}}
helm.sh/chart: {{ include "action-router.chart" . }}
app.kubernetes.io/name: {{ include "action-router.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: action-router
{{- end }}

{{/* Selector of one workload: (dict "root" $ "component" "router"). */}}
{{- define "action-router.selectorLabels" -}}
app.kubernetes.io/name: {{ include "action-router.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "action-router.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "action-router.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "action-router.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Secrets the code can read from a file: set <NAME>_FILE to the mounted key
(src/config/env.ts SECRET_VARIABLES, and GITHUB_APP_PRIVATE_KEY_FILE read by
src/config/config.ts). deploy/chart-env-check.mjs checks this list against
the code.
*/}}
{{- define "action-router.fileSecrets" -}}
KAFKA_SASL_PASSWORD KAFKA_SSL_KEY_PASSWORD KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET SCHEMA_REGISTRY_PASSWORD API_TOKEN_SECRET SIGNING_SECRET GITHUB_TOKEN GITLAB_API_TOKEN APPROVAL_SECRET OIDC_CLIENT_SECRET GITHUB_APP_PRIVATE_KEY
{{- end }}

{{/* Variables whose value is a file's path: in a Secret, the key is the file. */}}
{{- define "action-router.pathVariables" -}}
API_CLIENTS_FILE ORG_SECRETS_FILE GITLAB_TRIGGER_TOKENS_FILE KAFKA_SSL_CA_FILE KAFKA_SSL_CERT_FILE KAFKA_SSL_KEY_FILE KAFKA_SASL_OAUTHBEARER_TOKEN_FILE SCHEMA_REGISTRY_CA_FILE
{{- end }}

{{/* A value as the environment's text: numbers without an exponent. */}}
{{- define "action-router.envValue" -}}
{{- if kindIs "float64" . }}
{{- if eq . (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if kindIs "invalid" . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* A file's content: JSON text as given, or a YAML value written as JSON. */}}
{{- define "action-router.fileContent" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toPrettyJson . }}{{ end }}
{{- end }}

{{/*
The workloads, as (dict "root" $ "out" $state): sets $state.list to a list of
{role, component, w, name}, w being the workload's values (an agent's are
agentDefaults with the agent's own keys put over them, key by key).
*/}}
{{- define "action-router.components" -}}
{{- $root := .root }}
{{- $list := list }}
{{- if $root.Values.router.enabled }}
{{- $list = append $list (dict "role" "router" "command" "start" "component" "router" "w" $root.Values.router "path" "router") }}
{{- end }}
{{- if $root.Values.api.enabled }}
{{- $list = append $list (dict "role" "api" "command" "api" "component" "api" "w" $root.Values.api "path" "api") }}
{{- end }}
{{- range $i, $agent := $root.Values.agents }}
{{- $w := deepCopy $root.Values.agentDefaults }}
{{- range $k, $v := $agent }}{{- $_ := set $w $k $v }}{{- end }}
{{- $list = append $list (dict "role" "agent" "command" "agent" "component" (printf "agent-%s" $agent.name) "w" $w "path" (printf "agents[%d]" $i)) }}
{{- end }}
{{- $_ := set .out "list" $list }}
{{- end }}

{{/*
Where a workload's secrets come from: (dict "root" $ "c" $component) returns
a YAML list of {name, volume, dir, keys: {VARIABLE: key}, path}. The release's
Secret first, then an agent's own (whose variables win).
*/}}
{{- define "action-router.secretSources" -}}
{{- $root := .root }}
{{- $fullname := include "action-router.fullname" $root }}
{{- $sources := list }}
{{- $s := $root.Values.secrets }}
{{- if $s.existingSecret }}
{{- $sources = append $sources (dict "name" $s.existingSecret "volume" "secrets" "dir" "/etc/action-router/secrets" "keys" $s.existingSecretKeys "path" "secrets") }}
{{- else if $s.values }}
{{- $keys := dict }}{{- range $k, $_ := $s.values }}{{- $_ := set $keys $k $k }}{{- end }}
{{- $sources = append $sources (dict "name" $fullname "volume" "secrets" "dir" "/etc/action-router/secrets" "keys" $keys "path" "secrets") }}
{{- end }}
{{- if eq .c.role "agent" }}
{{- $a := .c.w.secrets | default dict }}
{{- if $a.existingSecret }}
{{- $sources = append $sources (dict "name" $a.existingSecret "volume" "agent-secrets" "dir" "/etc/action-router/agent-secrets" "keys" ($a.existingSecretKeys | default dict) "path" (printf "%s.secrets" .c.path)) }}
{{- else if $a.values }}
{{- $keys := dict }}{{- range $k, $_ := $a.values }}{{- $_ := set $keys $k $k }}{{- end }}
{{- $sources = append $sources (dict "name" (printf "%s-%s" $fullname .c.component | trunc 63 | trimSuffix "-") "volume" "agent-secrets" "dir" "/etc/action-router/agent-secrets" "keys" $keys "path" (printf "%s.secrets" .c.path)) }}
{{- end }}
{{- end }}
{{- toYaml $sources }}
{{- end }}

{{/*
The non-secret environment of one workload (its ConfigMap's data):
(dict "root" $ "c" $component). `config`, then the workload's `config`, then
what the chart sets from other values, then the paths of secret files.
*/}}
{{- define "action-router.envData" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $w := $c.w }}
{{- $fileSecrets := splitList " " (include "action-router.fileSecrets" $root) }}
{{- $pathVariables := splitList " " (include "action-router.pathVariables" $root) }}
{{- $env := dict }}
{{- range $k, $v := $root.Values.config }}{{- $_ := set $env $k (include "action-router.envValue" $v) }}{{- end }}
{{- range $k, $v := ($w.config | default dict) }}{{- $_ := set $env $k (include "action-router.envValue" $v) }}{{- end }}
{{- $_ := set $env "KAFKA_BROKERS" (join "," $root.Values.kafka.brokers) }}
{{- $_ := set $env "HTTP_PORT" (include "action-router.envValue" $root.Values.httpPort) }}
{{- $_ := set $env "ROUTER_SHUTDOWN_GRACE_MS" (include "action-router.envValue" $root.Values.shutdownGraceMs) }}
{{- /* The data folder, a volume: the run store (runs-<STATUS_TOPIC>.db) or an agent's call ledger (agent-calls-<org>.db). */}}
{{- $_ := set $env "DATA_DIR" "/data" }}
{{- if ne $c.role "agent" }}
{{- if or $root.Values.catalog.actions $root.Values.catalog.existingConfigMap }}
{{- $_ := set $env "ACTIONS_PATH" "/etc/action-router/catalog" }}
{{- end }}
{{- else }}
{{- $_ := set $env "AGENT_ORG_ID" $w.orgId }}
{{- if $root.Values.payloadMapping }}
{{- $_ := set $env "CONTROL_THE_PAYLOAD_CONFIG_PATH" "/etc/action-router/files/payload-mapping.json" }}
{{- end }}
{{- end }}
{{- /* Every role: OIDC settings in `config` reach agents too, and the code wants all of them or none. */}}
{{- if $root.Values.oidcAccess }}
{{- $_ := set $env "OIDC_ACCESS_FILE" "/etc/action-router/files/oidc-access.json" }}
{{- end }}
{{- if $w.nodeOptions }}
{{- $_ := set $env "NODE_OPTIONS" $w.nodeOptions }}
{{- else if $w.heapPercentage }}
{{- /* The image's young generation is kept: only the old space's share changes. */}}
{{- $_ := set $env "NODE_OPTIONS" (printf "--max-old-space-size-percentage=%s --max-semi-space-size=16" (include "action-router.envValue" $w.heapPercentage)) }}
{{- end }}
{{- range $source := include "action-router.secretSources" . | fromYamlArray }}
{{- range $var, $key := $source.keys }}
{{- if has $var $fileSecrets }}
{{- $_ := set $env (printf "%s_FILE" $var) (printf "%s/%s" $source.dir $key) }}
{{- else if has $var $pathVariables }}
{{- $_ := set $env $var (printf "%s/%s" $source.dir $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* Secret variables passed as environment variables (no _FILE form in the code). */}}
{{- define "action-router.secretEnv" -}}
{{- $fileSecrets := splitList " " (include "action-router.fileSecrets" .root) }}
{{- $pathVariables := splitList " " (include "action-router.pathVariables" .root) }}
{{- $env := dict }}
{{- range $source := include "action-router.secretSources" . | fromYamlArray }}
{{- range $var, $key := $source.keys }}
{{- if not (or (has $var $fileSecrets) (has $var $pathVariables)) }}
{{- $_ := set $env $var (dict "name" $source.name "key" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $var := keys $env | sortAlpha }}
{{- $ref := get $env $var }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key | quote }}
{{- end }}
{{- end }}

{{/*
Checks that the schema cannot express; each failure names the value.
*/}}
{{- define "action-router.checks" -}}
{{- $root := . }}
{{- $state := dict }}
{{- include "action-router.components" (dict "root" $root "out" $state) }}
{{- if not $state.list }}
{{- fail "nothing to run: router.enabled and api.enabled are false and agents is empty" }}
{{- end }}
{{- $secretBlocks := list (dict "path" "secrets" "s" $root.Values.secrets) }}
{{- range $c := $state.list }}
{{- if and (eq $c.role "agent") $c.w.secrets }}
{{- $secretBlocks = append $secretBlocks (dict "path" (printf "%s.secrets" $c.path) "s" $c.w.secrets) }}
{{- end }}
{{- end }}
{{- range $secretBlocks }}
{{- if and .s.existingSecret .s.values }}
{{- fail (printf "%s.values and %s.existingSecret: give one (the chart makes no Secret when existingSecret is set)" .path .path) }}
{{- end }}
{{- if and .s.existingSecretKeys (not .s.existingSecret) }}
{{- fail (printf "%s.existingSecretKeys is set but %s.existingSecret is empty" .path .path) }}
{{- end }}
{{- if and .s.existingSecret (not .s.existingSecretKeys) }}
{{- fail (printf "%s.existingSecret %q: list which variable each of its keys holds in %s.existingSecretKeys" .path .s.existingSecret .path) }}
{{- end }}
{{- end }}
{{- if and $root.Values.router.enabled $root.Values.router.autoscaling.enabled $root.Values.router.keda.enabled }}
{{- fail "router.autoscaling.enabled and router.keda.enabled: choose one (KEDA makes its own HorizontalPodAutoscaler)" }}
{{- end }}
{{- if and $root.Values.ingress.enabled (not $root.Values.ingress.hosts) }}
{{- fail "ingress.enabled needs ingress.hosts" }}
{{- end }}
{{- $names := dict }}
{{- range $c := $state.list }}
{{- $w := $c.w }}
{{- if hasKey $names $c.component }}
{{- fail (printf "%s.name %q: two agents have this name" $c.path $w.name) }}
{{- end }}
{{- $_ := set $names $c.component true }}
{{- $grace := div (int64 $root.Values.shutdownGraceMs) 1000 }}
{{- if and (not (kindIs "invalid" $w.terminationGracePeriodSeconds)) (le (int64 $w.terminationGracePeriodSeconds) $grace) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must be longer than shutdownGraceMs (%d s), or in-flight runs are killed before they finish" $c.path (int64 $w.terminationGracePeriodSeconds) $grace) }}
{{- end }}
{{- if and $w.pdb $w.pdb.enabled (not (kindIs "invalid" $w.pdb.minAvailable)) (not (kindIs "invalid" $w.pdb.maxUnavailable)) }}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both (set the other to null)" $c.path) }}
{{- end }}
{{- $config := merge (deepCopy ($w.config | default dict)) $root.Values.config }}
{{- if and (eq $c.role "api") (hasKey $config "RUNS_STORE") (eq (include "action-router.envValue" (get $config "RUNS_STORE") | lower) "false") }}
{{- fail "api.enabled: the API replicas serve the run store, so config.RUNS_STORE (or api.config.RUNS_STORE) must not be false" }}
{{- end }}
{{- range $source := include "action-router.secretSources" (dict "root" $root "c" $c) | fromYamlArray }}
{{- range $var, $_ := $source.keys }}
{{- if or (hasKey $config $var) (hasKey $config (printf "%s_FILE" $var)) }}
{{- fail (printf "%s: %s is set in config and in %s; give it once" $c.path $var $source.path) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds of a workload. */}}
{{- define "action-router.terminationGrace" -}}
{{- if not (kindIs "invalid" .w.terminationGracePeriodSeconds) }}
{{- int64 .w.terminationGracePeriodSeconds }}
{{- else }}
{{- $ms := int64 .root.Values.shutdownGraceMs }}
{{- add (div (add $ms 999) 1000) (int64 .root.Values.terminationGraceExtraSeconds) }}
{{- end }}
{{- end }}
