{{/*
The controller's ServiceAccount: serviceAccount.name, or the release name. An IRSA trust policy
or an EKS Pod Identity association names it, so it never changes unless a value changes it.
*/}}
{{- define "ec2-reconciler.serviceAccountName" -}}
{{- default .Release.Name .Values.serviceAccount.name -}}
{{- end -}}
