{{/*
One workload: a Deployment, or a StatefulSet when its run store is kept on a
volume of its own (persistence.enabled). (dict "root" $ "c" $component).
*/}}
{{- define "action-router.workload" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $w := $c.w }}
{{- $fullname := include "action-router.fullname" $root }}
{{- $name := printf "%s-%s" $fullname $c.component | trunc 63 | trimSuffix "-" }}
{{- $selector := include "action-router.selectorLabels" (dict "root" $root "component" $c.component) }}
{{- $hasStore := ne $c.role "agent" }}
{{- $persistent := and $hasStore $w.persistence.enabled }}
{{- $scaled := or (and $w.autoscaling $w.autoscaling.enabled) (and $w.keda $w.keda.enabled) }}
{{- /* Only the keys the process reads as files are mounted; the rest come as env from the Secret. */}}
{{- $fileVars := concat (splitList " " (include "action-router.fileSecrets" $root)) (splitList " " (include "action-router.pathVariables" $root)) }}
{{- $sources := list }}
{{- range $source := include "action-router.secretSources" . | fromYamlArray }}
{{- $keys := dict }}
{{- range $var, $key := $source.keys }}{{ if has $var $fileVars }}{{ $_ := set $keys $var $key }}{{ end }}{{ end }}
{{- if $keys }}{{ $sources = append $sources (set $source "keys" $keys) }}{{ end }}
{{- end }}
{{- $fileItems := list }}
{{- if $root.Values.oidcAccess }}
{{- $fileItems = append $fileItems "oidc-access.json" }}
{{- end }}
{{- if and (eq $c.role "agent") $root.Values.payloadMapping }}
{{- $fileItems = append $fileItems "payload-mapping.json" }}
{{- end }}
{{- $catalog := and $hasStore (or $root.Values.catalog.actions $root.Values.catalog.existingConfigMap) }}
apiVersion: apps/v1
kind: {{ ternary "StatefulSet" "Deployment" $persistent }}
metadata:
  name: {{ $name }}
  labels:
    {{- include "action-router.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $c.component }}
spec:
  {{- if not $scaled }}
  replicas: {{ int64 $w.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  {{- if $persistent }}
  serviceName: {{ $name }}-headless
  # Routers and API replicas do not depend on each other: start them together.
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "action-router.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ $c.component }}
        {{- with $w.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A changed setting, secret or file rolls the pods.
        checksum/config: {{ include "action-router.envData" . | sha256sum }}
        checksum/secret: {{ include "action-router.secretChecksum" . }}
        checksum/files: {{ include "action-router.filesData" $root | sha256sum }}
        {{- with $w.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "action-router.serviceAccountName" $root }}
      # The process never talks to the Kubernetes API.
      automountServiceAccountToken: false
      # Service links would put <SERVICE>_PORT variables into the environment the code reads.
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ include "action-router.terminationGrace" (dict "root" $root "w" $w) }}
      {{- with $w.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      containers:
        - name: {{ $c.role }}
          image: {{ include "action-router.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - {{ $c.command }}
          ports:
            - name: http
              containerPort: {{ int64 $root.Values.httpPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ $name }}-env
          {{- $secretEnv := include "action-router.secretEnv" . }}
          {{- if $secretEnv }}
          env:
            {{- $secretEnv | nindent 12 }}
          {{- end }}
          startupProbe:
            httpGet:
              path: {{ $w.probes.startup.path }}
              port: http
            periodSeconds: {{ int64 $w.probes.startup.periodSeconds }}
            failureThreshold: {{ int64 $w.probes.startup.failureThreshold }}
            timeoutSeconds: {{ int64 $w.probes.startup.timeoutSeconds }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ int64 $w.probes.liveness.periodSeconds }}
            failureThreshold: {{ int64 $w.probes.liveness.failureThreshold }}
            timeoutSeconds: {{ int64 $w.probes.liveness.timeoutSeconds }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ int64 $w.probes.readiness.periodSeconds }}
            failureThreshold: {{ int64 $w.probes.readiness.failureThreshold }}
            timeoutSeconds: {{ int64 $w.probes.readiness.timeoutSeconds }}
          resources:
            {{- toYaml $w.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: data
              mountPath: /data
            {{- range $sources }}
            - name: {{ .volume }}
              mountPath: {{ .dir }}
              readOnly: true
            {{- end }}
            {{- if $catalog }}
            - name: catalog
              mountPath: /etc/action-router/catalog
              readOnly: true
            {{- end }}
            {{- if $fileItems }}
            - name: files
              mountPath: /etc/action-router/files
              readOnly: true
            {{- end }}
            {{- with $root.Values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpSizeLimit }}
        {{- if not $persistent }}
        - name: data
          emptyDir:
            {{- /* An agent keeps its call ledger there: an emptyDir outlives a container restart (kill -9, OOM). */}}
            sizeLimit: {{ if $hasStore }}{{ $w.persistence.emptyDirSizeLimit }}{{ else }}{{ $w.dataSizeLimit }}{{ end }}
        {{- end }}
        {{- range $sources }}
        - name: {{ .volume }}
          secret:
            secretName: {{ .name }}
            defaultMode: 0440
            items:
              {{- range $var, $key := .keys }}
              - key: {{ $key | quote }}
                path: {{ $key | quote }}
              {{- end }}
        {{- end }}
        {{- if $catalog }}
        - name: catalog
          configMap:
            {{- if $root.Values.catalog.existingConfigMap }}
            name: {{ $root.Values.catalog.existingConfigMap }}
            {{- else }}
            name: {{ $fullname }}-files
            items:
              - key: actions.json
                path: actions.json
            {{- end }}
        {{- end }}
        {{- if $fileItems }}
        - name: files
          configMap:
            name: {{ $fullname }}-files
            items:
              {{- range $fileItems }}
              - key: {{ . }}
                path: {{ . }}
              {{- end }}
        {{- end }}
        {{- with $root.Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $root.Values.topologySpread.topologyKeys }}
        - maxSkew: {{ int64 $root.Values.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- $selector | nindent 14 }}
        {{- end }}
      {{- end }}
      {{- with $w.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- if $persistent }}
  volumeClaimTemplates:
    - metadata:
        name: data
        {{- with $w.persistence.annotations }}
        annotations:
          {{- toYaml . | nindent 10 }}
        {{- end }}
      spec:
        accessModes:
          {{- toYaml $w.persistence.accessModes | nindent 10 }}
        {{- with $w.persistence.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $w.persistence.size }}
  {{- end }}
{{- end }}

{{/* The files ConfigMap's data (catalog, OIDC access, payload mapping). */}}
{{- define "action-router.filesData" -}}
{{- $data := dict }}
{{- if and .Values.catalog.actions (not .Values.catalog.existingConfigMap) }}
{{- $_ := set $data "actions.json" (include "action-router.fileContent" .Values.catalog.actions) }}
{{- end }}
{{- if .Values.oidcAccess }}
{{- $_ := set $data "oidc-access.json" (include "action-router.fileContent" .Values.oidcAccess) }}
{{- end }}
{{- if .Values.payloadMapping }}
{{- $_ := set $data "payload-mapping.json" (include "action-router.fileContent" .Values.payloadMapping) }}
{{- end }}
{{- if $data }}{{ toYaml $data }}{{ end }}
{{- end }}

{{/*
The checksum of what a workload reads from Secrets: the values of the
Secrets the chart makes, and the names and keys of Secrets it is given (their
content is not visible to the chart: roll the pods yourself when it changes).
*/}}
{{- define "action-router.secretChecksum" -}}
{{- $parts := list (toJson .root.Values.secrets) }}
{{- if eq .c.role "agent" }}{{ $parts = append $parts (toJson .c.w.secrets) }}{{ end }}
{{- join "\n" $parts | sha256sum }}
{{- end }}
