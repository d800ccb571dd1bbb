"""How the operators that submit one object stop it: when the task is killed, when its
``execution_timeout`` runs out, and when it gives up on an object that has not finished
(capacity that never came, pods that cannot run, Airflow failing the deferred task itself).
Subclasses say how to stop (:meth:`_stop`, :meth:`_abandon`) and whether a kill does."""

from __future__ import annotations

from typing import Any, NoReturn

from .._compat import AirflowTaskTimeout, Context
from ..status.outcome import GAVE_UP_UNHEARD, gave_up_on
from ..status.tries import still_running
from ..submitting import list_tries
from ._cluster import ClusterOperator


class StoppingOperator(ClusterOperator):
    """Kill, timeout and give-up handling of one submitted object (see the module)."""

    def __init__(self, *, delete_on_give_up: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delete_on_give_up = delete_on_give_up

    def _about(self, event: dict[str, Any]) -> tuple[str, str, str, str]:
        """The namespace, name and uid of what the event is about, and how messages name it."""
        namespace, name = event["namespace"], event["name"]
        return namespace, name, event["uid"], self._where(namespace, name)

    @property
    def _acts_on_kill(self) -> bool:
        """Whether a kill or a timeout stops the object."""
        raise NotImplementedError

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop the object if it is still ours; returns what was done, as a sentence."""
        raise NotImplementedError

    def _timed_out(self, event: dict[str, Any]) -> NoReturn:
        """The trigger fired at the task's deadline: stop the object (unless ``delete_on_kill``
        or ``shutdown_on_kill`` says to leave it) and fail the task."""
        self._target = None  # on_kill() (Airflow 2 calls it on a timeout) has nothing to do
        done = ""
        why = gave_up_on(self.resource.kind, event)
        if self._acts_on_kill and why is not None:
            done = self._give_up(event, why)
        raise AirflowTaskTimeout(f"{event['message']}{done}")

    def _give_up(self, event: dict[str, Any], why: str) -> str:
        """Stop the unfinished object of ``event`` as the task fails (unless
        ``delete_on_give_up`` is False); returns what was done, as a sentence with a leading
        space to append to the error (empty when nothing was done)."""
        if not self.delete_on_give_up:
            return ""
        done = self._abandon(*self._about(event))
        if not done:
            return ""
        sentence = f"{done} so that it does not {why}."
        self.log.warning("%s", sentence)
        return " " + sentence

    def _abandon(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop an object the task gives up on if it is still ours; returns what was done
        (``Deleted Job ns/name on cluster``), empty when it was gone already."""
        raise NotImplementedError

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """When Airflow fails the deferred task without an event (its backstop timeout, a
        trigger that failed), give up on what still runs first, then let Airflow fail it."""
        if next_method == "__fail__" and self.delete_on_give_up and self._acts_on_kill:
            try:
                key, namespace = self._key(context), self._target_namespace()
                found = list_tries(self._request, self.resource, namespace, key)
                for obj in still_running(self.resource.kind, found, key.try_number):
                    meta = obj["metadata"]
                    event = {"namespace": namespace, "name": meta["name"], "uid": meta["uid"]}
                    self._give_up(event, GAVE_UP_UNHEARD)
            except Exception as exc:  # Airflow's own failure is the one to report
                self.log.warning("Could not stop the %s of this task: %s", self.resource.kind, exc)
        return super().resume_execution(next_method, next_kwargs, context)

    def on_kill(self) -> None:
        """Stop the object when the task is killed while the worker waits (synchronous mode)."""
        target = self._target
        if target is None or not self._acts_on_kill:
            return
        self._stop(target.namespace, target.name, target.uid, target.where)
