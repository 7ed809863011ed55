"""SMS provider emulator (Aliyun Dysmsapi + Tencent Cloud SMS) for tests and demos.

`python -m services.notify.emulator --port 8005`; see docs/sms-providers.md.
"""

from services.notify.emulator.app import Emulator, create_app
from services.notify.emulator.state import EmulatorConfig, Faults

__all__ = ["Emulator", "EmulatorConfig", "Faults", "create_app"]
