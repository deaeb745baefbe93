"""Type stubs of the extension module (use the ``lockhog`` package, not this module)."""

from typing import Any, Awaitable, Optional, Sequence, Tuple, Union

_Key = Union[str, bytes, int, Tuple[Any, ...]]

class NativeGuard:
    name: str
    resource: str
    fencing_token: Optional[int]
    attempts: int
    waited: float
    @property
    def lost(self) -> Optional[str]: ...
    def release(self) -> bool: ...
    def release_async(self) -> Awaitable[bool]: ...
    def wait_lost(self, timeout: Optional[float] = None) -> Optional[str]: ...
    def wait_lost_async(self) -> Awaitable[Optional[str]]: ...

class NativeLocker:
    @staticmethod
    def connect(url: Optional[str] = None, namespace: Optional[str] = None) -> NativeLocker: ...
    @staticmethod
    def connect_async(
        url: Optional[str] = None, namespace: Optional[str] = None
    ) -> Awaitable[NativeLocker]: ...
    @property
    def url(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def capabilities(self) -> dict[str, bool]: ...
    def acquire(
        self,
        name: _Key,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
        shared: bool = False,
        resource: bool = False,
        permits: Optional[int] = None,
    ) -> NativeGuard: ...
    def acquire_all(
        self,
        names: Sequence[_Key],
        resources: Sequence[str] = (),
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> list[NativeGuard]: ...
    def acquire_async(
        self,
        name: _Key,
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
        shared: bool = False,
        resource: bool = False,
        permits: Optional[int] = None,
    ) -> Awaitable[NativeGuard]: ...
    def acquire_all_async(
        self,
        names: Sequence[_Key],
        resources: Sequence[str] = (),
        blocking: bool = True,
        timeout: Optional[float] = None,
        ttl: Optional[float] = None,
    ) -> Awaitable[list[NativeGuard]]: ...
    def resource(self, name: str) -> str: ...
    def check_resource(self, resource: str) -> str: ...
    def status(
        self, names: Sequence[str], resources: Sequence[str] = ()
    ) -> list[Tuple[Optional[str], str, str, Optional[str]]]: ...
    def cleanup(self) -> Tuple[int, int]: ...

class NativeStore:
    @staticmethod
    def connect(url: str) -> NativeStore: ...
    def get(self, namespace: str, key: str) -> Optional[bytes]: ...
    def put(self, namespace: str, key: str, value: bytes, ttl: float) -> None: ...

def hashed_name(key: _Key) -> str: ...
def default_url() -> str: ...
def _cli(argv: Sequence[str]) -> int: ...
