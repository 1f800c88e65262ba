"""An application secret that the leader creates once and every unit reads.

The leader keeps the content in a labelled Juju application secret and publishes the secret's
ID in the peer application databag: every unit then reads the same secret, and hears of a new
revision through the peer relation. The content never goes anywhere else (no databag, no log).
What the content is, and how it is generated, is the caller's (connector_identity.py,
tunnel_secret.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ops

Content = dict[str, str]


class PublishedSecret:
    """Read (every unit) and create or replace (leader) one labelled application secret."""

    def __init__(
        self,
        model: ops.Model,
        peer_relation_name: str,
        label: str,
        id_key: str,
        keys: tuple[str, ...],
        beside: Callable[[Content], Mapping[str, str]] = lambda _: {},
    ):
        """Describe the secret and where its ID is published.

        Args:
            model: the charm's model.
            peer_relation_name: the peer endpoint whose app databag holds the secret ID.
            label: the secret's label, by which the leader finds it again.
            id_key: the peer app databag key of the secret ID.
            keys: the content keys; a secret that lacks one is not (yet) usable.
            beside: what else to publish next to the ID, derived from the content (never
                the content itself: the databag is readable by every unit's charm).
        """
        self._model = model
        self._peer_relation_name = peer_relation_name
        self._label = label
        self._id_key = id_key
        self._keys = keys
        self._beside = beside
        self._published: Content | None = None

    def get(self) -> Content | None:
        """Return the published content, None until the leader created it."""
        if self._published is not None:
            # Read or published in this hook (Juju shows a new revision only from the next).
            return self._published
        peer = self._model.get_relation(self._peer_relation_name)
        secret_id = peer.data[self._model.app].get(self._id_key) if peer else None
        if not secret_id:
            return None
        try:
            content = self._model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            return None
        # Read once per hook: the reconcile, the status and the actions all ask.
        self._published = self._complete(content)
        return self._published

    def ensure(self, create: Callable[[], Content]) -> Content | None:
        """Create and publish the content unless it exists (leader only).

        Returns:
            The content, or None when there is no peer relation to publish it in yet.
        """
        content = self.get()
        if content is not None:
            return content
        # A secret whose ID never reached the databag is still the one other parties may
        # rely on (a connector certificate clusters pinned): publish it, do not replace it.
        return self.publish(self._labelled() or create())

    def publish(self, content: Content) -> Content | None:
        """Store `content` as the secret's new revision (or a new secret) and publish its ID.

        Returns:
            The content, or None when there is no peer relation to publish it in yet.
        """
        peer = self._model.get_relation(self._peer_relation_name)
        if peer is None:
            return None
        try:
            secret = self._model.get_secret(label=self._label)
            secret.set_content(content)
        except ops.SecretNotFoundError:
            secret = self._model.app.add_secret(content, label=self._label)
        databag = peer.data[self._model.app]
        databag[self._id_key] = secret.id or secret.get_info().id
        databag.update(self._beside(content))
        self._published = content
        return content

    def _labelled(self) -> Content | None:
        try:
            content = self._model.get_secret(label=self._label).get_content(refresh=True)
        except ops.SecretNotFoundError:
            return None
        return self._complete(content)

    def _complete(self, content: Content) -> Content | None:
        return content if all(key in content for key in self._keys) else None
