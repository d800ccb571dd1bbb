"""Argo Workflows (``argoproj.io/v1alpha1``) in the simulated cluster.

Installed when the cluster configuration has an ``argo`` section: the API server then serves
``workflows`` (``wf``), ``workflowtemplates`` (``wftmpl``) and ``clusterworkflowtemplates``
(``cwftmpl``) like the CRDs (no status subresource), and :class:`ArgoController` runs
Workflows the way Argo's workflow controller (v3.5+ / v4) does, on ordinary Pods that go through
the simulated scheduler and kubelet.

Modelled (names and messages from ``workflow/controller`` and ``workflow/validate``):

* templates ``container`` (a pod with one container ``main``), ``script`` (the same, running
  the staged source), ``containerSet`` (one pod, a node per container), ``steps``, ``dag``
  (``depends`` expressions or ``dependencies``,
  ``target``, ``failFast``) and ``suspend`` (``duration``);
  ``inline`` templates; ``templateRef`` to (Cluster)WorkflowTemplates and
  ``spec.workflowTemplateRef``
  (``status.storedWorkflowTemplateSpec``; the Workflow's parameters override the template's);
* parameters: ``spec.arguments``, ``inputs`` with defaults or from a ConfigMap
  (``valueFrom.configMapKeyRef``), ``{{…}}`` substitution of
  ``inputs.*``, ``workflow.*`` (name, namespace, uid, parameters, scheduledTime, labels,
  annotations, outputs), ``item``, ``steps.X.*``, ``tasks.X.*``, ``pod.name``, ``retries``;
  ``withItems`` / ``withParam`` / ``withSequence`` fan-out named ``<step>(<i>:<item>)``; ``when``;
  ``outputs.result`` (``main``'s output, where the caller refers to it);
  output parameters from ``valueFrom.path`` (the kubelet's files of ``main``), ``default``,
  ``globalName`` (``status.outputs``), and ``valueFrom.parameter`` on steps/DAG templates;
* validation on the first pass (``invalid spec: …``); status as Argo writes it: phase, times,
  ``progress``, message, ``conditions`` (``PodRunning``, ``Completed``), ``nodes`` keyed by
  node id (``<wf>-<fnv32a(name)>``), optionally ``compressedNodes`` or
  ``offloadNodeStatusVersion``; pods named ``<wf>-<template>-<fnv32a(node name)>`` (v2);
* ``{{=expr}}`` expression tags (:mod:`.exprlang`), resource templates (:mod:`.resource`),
  http templates (:mod:`.http`, done by the controller: canned answers or loopback only),
  a step's exit hook (``hooks.exit`` / ``onExit``, node ``<step>.onExit``);
* ``retryStrategy`` (``limit``, ``retryPolicy``, ``backoff``), ``spec.onExit``,
  ``spec.shutdown`` (``Stop`` / ``Terminate``), ``spec.suspend``, ``activeDeadlineSeconds``,
  ``spec.parallelism`` and template ``parallelism``, controller-wide ``parallelism``
  (postponed Workflows stay ``Pending``), ``ttlStrategy`` and ``podGC``; a pod deleted behind
  the controller's back errors its node (``pod deleted``).

Not modelled: Argo's ``init`` and ``wait`` containers (their effects are: output parameters,
the missing-file error), data / plugin templates, artifacts, hooks other than exit
hooks (``onExit``, a step's ``exit`` hook), DAG task hooks,
memoization, synchronization (semaphores, mutexes), daemons and sidecars, ``argo resume`` of a
suspend node without a duration, node events, the Argo Server, CronWorkflows, and the
controller's informer delays (no ``RECENTLY_STARTED_POD_DURATION`` grace for missing pods).
"""

from __future__ import annotations

from .config import ArgoSettings, check_config
from .controller import POSTPONED, ArgoController

__all__ = ["POSTPONED", "ArgoController", "ArgoSettings", "check_config"]
