"""Deterministic models of every device type of the contract: daily cycles, noise and faults."""

from __future__ import annotations

import math
from random import Random
from typing import Any, ClassVar

from ground.contract import DEVICE_TYPES, Kind

Body = dict[str, Any]
Report = list[tuple[Kind, Body]]

LOCAL_UTC_OFFSET_H = 8  # the sites are in China
SNAPSHOT_EVERY = 10  # a full snapshot on the first report and every 10th after it
MS_PER_H = 3_600_000
# Report by exception: how far a number must move from the value last sent; absent means any change.
DEADBAND = {
    "speed_mps": 0.1,
    "pressure_mpa": 0.005,
    "outlet_pressure_mpa": 0.01,
    "level_pct": 0.3,
    "power_w": 20.0,
    "battery_v": 0.02,
    "temp_c": 0.1,
    "supply_temp_c": 0.1,
    "return_temp_c": 0.1,
    "humidity_pct": 1.0,
    "co2_ppm": 15.0,
    "pm25_ugm3": 2.0,
    "hcho_mgm3": 0.005,
    "co_mgm3": 0.5,
}


def local_hour(t_ms: float) -> float:
    """Hour of the day at the device (0 ≤ h < 24), local time UTC+8."""
    return (t_ms / MS_PER_H + LOCAL_UTC_OFFSET_H) % 24


def local_day(t_ms: float) -> int:
    """Days since 1970-01-01 in local time (1970-01-01 was a Thursday)."""
    return int((t_ms / MS_PER_H + LOCAL_UTC_OFFSET_H) // 24)


def is_daytime(t_ms: float) -> bool:
    """Daytime traffic hours, 07:00-22:00 local."""
    return 7 <= local_hour(t_ms) < 22


def bump(hour: float, center: float, width: float) -> float:
    """A smooth daily peak: 1 at `center`, falling off over `width` hours, wrapping at midnight."""
    d = abs(hour - center) % 24
    d = min(d, 24 - d)
    return math.exp(-0.5 * (d / width) ** 2)


def relax(x: float, target: float, tau_s: float, dt_s: float) -> float:
    """First-order approach of `x` to `target` with time constant `tau_s`."""
    return target + (x - target) * math.exp(-dt_s / tau_s)


def wander(x: float, mean: float, tau_s: float, sigma: float, dt_s: float, rng: Random) -> float:
    """Ornstein-Uhlenbeck step: noise correlated in time, so close reports differ only a little."""
    a = math.exp(-dt_s / tau_s)
    return mean + (x - mean) * a + sigma * math.sqrt(1 - a * a) * rng.gauss(0.0, 1.0)


class DeviceModel:
    """Base of the device models: report by exception, periodic snapshots and the fault clock."""

    device_type: ClassVar[str] = ""
    fault_minutes: ClassVar[tuple[float, float]] = (3.0, 10.0)

    def __init__(
        self,
        device_id: str,
        site: str,
        rng: Random | None = None,
        fault_rate_per_h: float = 0.0,
        index: int = 0,
    ) -> None:
        self.device_id = device_id
        self.site = site
        self.index = index  # position among the devices of this type at the site
        self.fault_rate_per_h = fault_rate_per_h
        self.fault: str | None = None  # the kind of the fault in progress
        self.now_ms = 0
        self._fault_until = 0
        self._started = False
        self._reports = 0
        self._sent: dict[str, Any] = {}
        self._sent_ms = 0
        self._events: list[Body] = []
        self._setup(rng or Random(f"{site}/{device_id}"))

    def report(self, t_ms: int, rng: Random) -> Report:
        """Advance to device time `t_ms` and return the telemetry and events to publish now."""
        if not self._started:
            self._started = True
            self.now_ms = t_ms
            self._begin(t_ms, rng)
        if t_ms < self.now_ms:
            raise ValueError(f"device time went back from {self.now_ms} to {t_ms}")
        dt_s = (t_ms - self.now_ms) / 1000
        self.now_ms = t_ms
        self._step(t_ms, dt_s, rng)
        self._fault_clock(t_ms, dt_s, rng)
        metrics = self._metrics()
        # Also a snapshot after two quiet reporting intervals: the service calls a device offline
        # after three.
        quiet_ms = 2000 * DEVICE_TYPES[self.device_type].report_interval_s
        if self._reports % SNAPSHOT_EVERY == 0 or t_ms - self._sent_ms >= quiet_ms:
            changed = metrics
        else:
            changed = {k: v for k, v in metrics.items() if self._changed(k, v)}
        self._reports += 1
        out: Report = []
        if changed:
            self._sent.update(changed)
            self._sent_ms = t_ms
            out.append((Kind.TELEMETRY, {"metrics": changed}))
        out.extend((Kind.EVENT, body) for body in self._events)
        self._events.clear()
        return out

    def _changed(self, name: str, value: Any) -> bool:
        old = self._sent.get(name)
        # Reaching or leaving zero always counts: a stop or a start is news, however small.
        if isinstance(value, bool | str) or not isinstance(old, int | float) or 0 in (value, old):
            return bool(value != old)
        return bool(abs(value - old) > DEADBAND.get(name, 0.0))

    def _fault_clock(self, t_ms: int, dt_s: float, rng: Random) -> None:
        if self.fault is not None:
            if t_ms >= self._fault_until:
                self._end_fault(t_ms, rng)
                self.fault = None
            return
        # Faults arrive as a Poisson process in device time.
        chance = -math.expm1(-self.fault_rate_per_h * dt_s / 3600)
        if chance > 0 and rng.random() < chance:
            self.fault = self._start_fault(t_ms, rng)
            lo, hi = self.fault_minutes
            self._fault_until = t_ms + int(rng.uniform(lo, hi) * 60_000)

    def _event(self, code: str, state: str | None = None, **detail: Any) -> None:
        body: Body = {"code": code, "detail": detail}
        if state is not None:
            body["state"] = state
        self._events.append(body)

    # Hooks for the device types.
    def _setup(self, rng: Random) -> None:
        """Draw the device's fixed properties and initial state."""

    def _begin(self, t_ms: int, rng: Random) -> None:
        """Set up what depends on the time of the first report."""

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        """Advance the state by `dt_s` seconds to `t_ms`."""

    def _metrics(self) -> dict[str, Any]:
        """All of the type's metrics, as measured now."""
        raise NotImplementedError

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        """Enter a fault; returns its kind."""
        return "fault"

    def _end_fault(self, t_ms: int, rng: Random) -> None:
        """Recover from the fault in progress."""


FLOOR_M = 3.2
DOOR_ZONE_M = 0.1  # ± distance from a landing that counts as in the door zone
ACCEL_MPS2 = 0.9
DOOR_OPENING_S, DOOR_CLOSING_S = 2.0, 3.0


class Elevator(DeviceModel):
    """A traction lift answering calls between floors, its door cycling at every landing."""

    device_type = "elevator"
    fault_minutes = (2.0, 8.0)

    def _setup(self, rng: Random) -> None:
        self.floors = [f for f in range(-rng.randint(1, 2), rng.randint(12, 32) + 1) if f != 0]
        self.rated_mps = rng.choice((1.5, 1.75, 2.0, 2.5))
        self.run_count = rng.randint(20_000, 400_000)
        self.pos_m = FLOOR_M * self.floors.index(1)
        self.speed_mps = 0.0
        self.phase = "idle"  # idle, moving, opening, open, closing, dwell (door closed), stuck
        self.phase_end_s = 0.0
        self.occupied = False
        self.trip = (0.0, 0.0, 0.0, 0.0)  # start_s, from_m, to_m, vmax
        self.alarm_at_s: float | None = None
        self.fault_code = ""

    def _begin(self, t_ms: int, rng: Random) -> None:
        self.phase_end_s = t_ms / 1000 + rng.uniform(0, 30)

    def _set(self, phase: str, at_s: float, duration_s: float) -> None:
        self.phase, self.phase_end_s = phase, at_s + duration_s

    def _start_trip(self, at_s: float, to_m: float, vmax: float) -> None:
        d = abs(to_m - self.pos_m)
        t_acc = min(vmax / ACCEL_MPS2, math.sqrt(d / ACCEL_MPS2))
        v_peak = ACCEL_MPS2 * t_acc
        cruise_s = (d - ACCEL_MPS2 * t_acc**2) / v_peak if v_peak > 0 else 0.0
        self.trip = (at_s, self.pos_m, to_m, v_peak)
        self._set("moving", at_s, 2 * t_acc + cruise_s)

    def _trip_state(self, now_s: float) -> tuple[float, float]:
        """Position and speed on a trapezoidal speed profile."""
        start_s, from_m, to_m, v = self.trip
        total_s = self.phase_end_s - start_s
        t_acc = v / ACCEL_MPS2
        tau = min(max(now_s - start_s, 0.0), total_s)
        d = abs(to_m - from_m)
        if tau < t_acc:
            s, speed = 0.5 * ACCEL_MPS2 * tau**2, ACCEL_MPS2 * tau
        elif tau <= total_s - t_acc:
            s, speed = 0.5 * ACCEL_MPS2 * t_acc**2 + v * (tau - t_acc), v
        else:
            rest = total_s - tau
            s, speed = d - 0.5 * ACCEL_MPS2 * rest**2, ACCEL_MPS2 * rest
        return from_m + math.copysign(min(s, d), to_m - from_m), speed

    def _next_phase(self, at_s: float, rng: Random) -> None:
        phase = self.phase
        if phase in ("idle", "dwell"):
            here = self._landing()
            target = rng.choice([i for i in range(len(self.floors)) if i != here])
            self._start_trip(at_s, target * FLOOR_M, self.rated_mps)
        elif phase == "moving":
            self.pos_m, self.speed_mps = self.trip[2], 0.0
            self.run_count += 1
            self._set("opening", at_s, DOOR_OPENING_S)
        elif phase == "opening":
            # Passengers leave and board: the next trip is occupied 80 % by day, 30 % by night.
            self.occupied = rng.random() < (0.8 if is_daytime(at_s * 1000) else 0.3)
            self._set("open", at_s, rng.uniform(3.0, 6.0))
        elif phase == "open":
            self._set("closing", at_s, DOOR_CLOSING_S)
        elif phase == "closing":
            if self.occupied:  # leave at once: a closed, occupied, idle car would be an entrapment
                self._set("dwell", at_s, 1.0)
            else:
                mean_idle_s = 45 if is_daytime(at_s * 1000) else 400
                self._set("idle", at_s, rng.expovariate(1 / mean_idle_s))

    def _landing(self) -> int:
        return min(max(round(self.pos_m / FLOOR_M), 0), len(self.floors) - 1)

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        now_s = t_ms / 1000
        while self.phase_end_s <= now_s:
            self._next_phase(self.phase_end_s, rng)
        if self.phase == "moving":
            self.pos_m, self.speed_mps = self._trip_state(now_s)
        if self.alarm_at_s is not None and now_s >= self.alarm_at_s:
            self.alarm_at_s = None
            self._event("ALARM_BUTTON", floor=self.floors[self._landing()])

    def _metrics(self) -> dict[str, Any]:
        landing = self._landing()
        return {
            "floor": self.floors[landing],
            "moving": self.phase == "moving",
            "speed_mps": round(self.speed_mps, 2),
            "door": self.phase if self.phase in ("opening", "open", "closing") else "closed",
            "in_door_zone": abs(self.pos_m - landing * FLOOR_M) <= DOOR_ZONE_M,
            "occupied": self.occupied,
            "service_mode": "normal",
            "run_count": self.run_count,
        }

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        if self.phase == "moving":
            # Stops where it is, usually between floors: entrapment if occupied.
            self.fault_code = rng.choice(("SAFETY_CIRCUIT_OPEN", "POWER_FAILURE"))
        else:
            # The door lock fails at the landing: the door stays shut on whoever is inside.
            self.fault_code = "DOOR_LOCK_FAULT"
            boarding = self.phase in ("opening", "open")
            self.occupied = self.occupied or boarding or rng.random() < 0.5
        self.speed_mps = 0.0
        self._set("stuck", t_ms / 1000, math.inf)
        if self.occupied:
            self.alarm_at_s = t_ms / 1000 + rng.uniform(10, 60)
        self._event(self.fault_code, "raised", floor=self.floors[self._landing()])
        return "entrapment" if self.occupied else "stopped"

    def _end_fault(self, t_ms: int, rng: Random) -> None:
        self._event(self.fault_code, "cleared", floor=self.floors[self._landing()])
        self.alarm_at_s = None
        now_s = t_ms / 1000
        if abs(self.pos_m - self._landing() * FLOOR_M) > DOOR_ZONE_M:
            self._start_trip(now_s, self._landing() * FLOOR_M, 0.3)  # rescue run to the landing
        else:
            self._set("opening", now_s, DOOR_OPENING_S)


class FirePanel(DeviceModel):
    """A fire alarm control panel: power supervision, and alarms only when a fault is injected."""

    device_type = "fire_panel"
    fault_minutes = (2.0, 15.0)
    _ZONES = ("lift-lobby", "corridor", "stair", "garage", "plant-room")

    def _setup(self, rng: Random) -> None:
        self.main_ok = self.backup_ok = True
        self.fault_detail: Body = {}

    def _metrics(self) -> dict[str, Any]:
        return {"main_power_ok": self.main_ok, "backup_power_ok": self.backup_ok}

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        kind = rng.choices(("FIRE_ALARM", "FAULT", "SUPERVISORY", "POWER"), (3, 3, 2, 2))[0]
        floor = rng.choice([f"{rng.randint(1, 30)}F", "B1", "B2"])
        if kind == "FIRE_ALARM":
            zone = f"{floor}-{rng.choice(self._ZONES)}"
            self.fault_detail = {"zone": zone, "component": f"smoke-{rng.randint(1, 400):04d}"}
        elif kind == "FAULT":
            self.fault_detail = {
                "component": rng.choice(("loop-1", "loop-2", f"heat-{rng.randint(1, 99):04d}"))
            }
        elif kind == "SUPERVISORY":
            self.fault_detail = {"component": rng.choice(("signal-valve-01", "fire-pump-ctl"))}
        else:
            if rng.random() < 0.5:
                self.main_ok = False
            else:
                self.backup_ok = False
            return kind
        self._event(kind, "raised", **self.fault_detail)
        return kind

    def _end_fault(self, t_ms: int, rng: Random) -> None:
        if self.fault == "POWER":
            self.main_ok = self.backup_ok = True
        else:
            self._event(str(self.fault), "cleared", **self.fault_detail)


class SprinklerPipe(DeviceModel):
    """Riser pressure: a slow leak-down topped up by the jockey pump."""

    device_type = "sprinkler_pipe"

    def _setup(self, rng: Random) -> None:
        self.static = rng.uniform(0.4, 0.65)
        self.leak_mpa_s = rng.uniform(0.005, 0.03) / 3600
        self.p = self.static + rng.uniform(-0.03, 0.02)
        self.noise = 0.0
        self.jockey = False

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        if self.fault == "low":  # a discharge or a closed valve upstream
            self.p = relax(self.p, 0.02, 30, dt_s)
        elif self.fault == "high":  # a failed pressure-reducing valve
            self.p = relax(self.p, 1.3, 30, dt_s)
        elif self.jockey:
            self.p = min(self.p + 0.01 * dt_s, self.static + 0.02)
            self.jockey = self.p < self.static + 0.02
        else:
            self.p -= self.leak_mpa_s * dt_s
            self.jockey = self.p < self.static - 0.04
        self.noise = wander(self.noise, 0.0, 120, 0.003, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {"pressure_mpa": round(max(self.p + self.noise, 0.0), 3)}

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        return "low" if rng.random() < 0.75 else "high"


class FireWaterTank(DeviceModel):
    """Fire water tank: evaporation, topped up by a float valve; a fault drains it."""

    device_type = "fire_water_tank"
    fault_minutes = (15.0, 30.0)

    def _setup(self, rng: Random) -> None:
        self.level = rng.uniform(96.0, 99.5)
        self.filling = False
        self.noise = 0.0

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        if self.fault:
            self.level = max(self.level - 1.5 / 60 * dt_s, 60.0)  # leak, refill valve failed
        elif self.filling:
            self.level = min(self.level + 1.0 / 60 * dt_s, 99.5)
            self.filling = self.level < 99.5
        else:
            self.level -= 0.05 / 3600 * dt_s
            self.filling = self.level < 96
        self.noise = wander(self.noise, 0.0, 300, 0.1, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {"level_pct": round(min(max(self.level + self.noise, 0.0), 100.0), 1)}


class FirePump(DeviceModel):
    """Fire pump controller: stopped in auto, run for ten minutes in the weekly Monday test."""

    device_type = "fire_pump"
    fault_minutes = (12.0, 30.0)

    def _metrics(self) -> dict[str, Any]:
        monday = (local_day(self.now_ms) + 3) % 7 == 0
        test = monday and 10.0 <= local_hour(self.now_ms) < 10 + 10 / 60 and self.fault is None
        auto, power = self.fault != "manual", self.fault != "power"
        return {"running": test, "auto_mode": auto, "power_ok": power}

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        return rng.choice(("manual", "power"))


class LightingCircuit(DeviceModel):
    """A lighting circuit on a dusk-to-dawn schedule; every third, in the garage, always on."""

    device_type = "lighting_circuit"
    fault_minutes = (6.0, 20.0)

    def _setup(self, rng: Random) -> None:
        self.rated_w = rng.uniform(600, 2400)
        self.always_on = self.index % 3 == 2
        self.on_at, self.off_at = rng.uniform(18.0, 19.0), rng.uniform(6.0, 6.8)
        self.noise = 0.0
        self.failures = 0

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        self.noise = wander(self.noise, 0.0, 600, 0.01, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        h = local_hour(self.now_ms)
        tripped = self.fault == "breaker"
        on = not tripped and (self.always_on or h >= self.on_at or h < self.off_at)
        power = (self.rated_w * (1 + self.noise) - 40 * self.failures) if on else 0.0
        return {
            "on": on,
            "breaker_tripped": tripped,
            "power_w": round(power, 1),
            "lamp_failures": self.failures,
        }

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        if rng.random() < 0.5:
            return "breaker"
        self.failures = rng.randint(1, 3)
        return "lamps"

    def _end_fault(self, t_ms: int, rng: Random) -> None:
        self.failures = 0


class EmergencyLight(DeviceModel):
    """A self-contained emergency luminaire: battery on float charge, last discharge-test result."""

    device_type = "emergency_light"

    def _setup(self, rng: Random) -> None:
        self.float_v = rng.uniform(3.95, 4.1)
        self.v = self.float_v
        self.test_min = round(rng.uniform(60, 120))

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        if self.fault == "mains":  # lit from the battery, discharging
            self.v = max(self.v - 0.1 / 60 * dt_s, 3.3)
        else:
            self.v = wander(self.v, self.float_v, 600, 0.01, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {
            "main_power_ok": self.fault != "mains",
            "battery_v": round(self.v, 2),
            "fault": self.fault == "charger",
            "last_test_duration_min": self.test_min,
        }

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        kind = rng.choice(("mains", "charger", "test"))
        if kind == "test":  # a discharge test the worn battery did not last
            self.test_min = round(rng.uniform(8, 28))
        return kind

    def _end_fault(self, t_ms: int, rng: Random) -> None:
        if self.fault == "test":  # battery replaced and retested
            self.test_min = round(rng.uniform(60, 120))


class WaterPump(DeviceModel):
    """A domestic-water booster pump: duty and standby swap daily; the VFD holds the setpoint."""

    device_type = "water_pump"

    def _setup(self, rng: Random) -> None:
        self.setpoint = rng.uniform(0.35, 0.55)
        self.p = self.setpoint

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        h = local_hour(t_ms)
        sag = 0.02 * (bump(h, 7.5, 1.2) + bump(h, 19.5, 1.8))  # demand peaks pull the main down
        self.p = wander(self.p, self.setpoint - sag, 120, 0.008, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        duty = (local_day(self.now_ms) + self.index) % 2 == 0
        return {
            "running": duty and self.fault is None,
            "fault": self.fault is not None,
            "outlet_pressure_mpa": round(self.p, 3),
        }


class WaterTank(DeviceModel):
    """A domestic roof tank drawn down by day and refilled by its feed pump between 40 and 90 %."""

    device_type = "water_tank"
    fault_minutes = (15.0, 30.0)

    def _setup(self, rng: Random) -> None:
        self.level = rng.uniform(45, 85)
        self.filling = False
        self.noise = 0.0

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        h = local_hour(t_ms)
        draw = 0.1 + 1.0 * (bump(h, 7.5, 1.2) + bump(h, 19.5, 1.8)) + 0.4 * bump(h, 12.5, 1.5)
        if self.fault:  # feed pump failed while a burst pipe drains the tank
            draw, self.filling = draw + 3.0, False
        elif self.filling:
            draw -= 2.5
        self.level = min(max(self.level - draw / 60 * dt_s, 0.0), 100.0)
        if not self.fault:
            self.filling = self.level < 90 if self.filling else self.level <= 40
        self.noise = wander(self.noise, 0.0, 60, 0.2, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {"level_pct": round(min(max(self.level + self.noise, 0.0), 100.0), 1)}


class SumpPit(DeviceModel):
    """A sump pit filling slowly, pumped from 60 % down to 20 % by alternating duty pumps."""

    device_type = "sump_pit"
    fault_minutes = (6.0, 15.0)

    def _setup(self, rng: Random) -> None:
        self.level = rng.uniform(20, 60)
        self.inflow = rng.uniform(0.1, 0.4)  # % per minute
        self.running = 0

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        inflow = self.inflow * (1 + 0.3 * math.sin(t_ms / MS_PER_H))
        if self.fault:  # both pumps faulted during a storm inflow
            self.running, inflow = 0, 12.0
        self.level = min(max(self.level + (inflow - 4.0 * self.running) / 60 * dt_s, 0.0), 100.0)
        if not self.fault:
            if self.level >= 60:
                self.running = 2 if self.level >= 80 else 1
            elif self.level <= 20:
                self.running = 0

    def _metrics(self) -> dict[str, Any]:
        return {
            "level_pct": round(self.level, 1),
            "pumps_running": self.running,
            "pumps_faulted": 2 if self.fault else 0,
        }


class AirQuality(DeviceModel):
    """An indoor air monitor in a lobby or clubhouse; CO2 follows occupancy."""

    device_type = "air_quality"
    fault_minutes = (70.0, 120.0)  # the limits are 1 h means

    def _setup(self, rng: Random) -> None:
        self.pm_mean = rng.uniform(12, 35)
        self.temp, self.hum, self.co2, self.pm, self.hcho = 24.0, 55.0, 450.0, self.pm_mean, 0.03

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        h = local_hour(t_ms)
        warm = math.cos((h - 15) / 24 * 2 * math.pi)  # warmest mid-afternoon
        occupancy = min(1.0, bump(h, 10, 2) + bump(h, 15, 2) + 0.7 * bump(h, 20, 1.5))
        co2 = 1800.0 if self.fault == "ventilation" else 430 + 400 * occupancy
        pm = 230.0 if self.fault == "haze" else self.pm_mean
        self.temp = wander(self.temp, 24 + 1.5 * warm, 1800, 0.3, dt_s, rng)
        self.hum = wander(self.hum, 55 - 6 * warm, 1800, 3.0, dt_s, rng)
        self.co2 = wander(self.co2, co2, 900, 20.0, dt_s, rng)
        self.pm = wander(self.pm, pm, 1800, 5.0, dt_s, rng)
        self.hcho = wander(self.hcho, 0.03, 3600, 0.006, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {
            "temp_c": round(self.temp, 1),
            "humidity_pct": round(min(max(self.hum, 0.0), 100.0), 1),
            "co2_ppm": round(max(self.co2, 380.0)),
            "pm25_ugm3": round(max(self.pm, 3.0), 1),
            "hcho_mgm3": round(max(self.hcho, 0.005), 3),
        }

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        return rng.choice(("ventilation", "haze"))


class GarageCo(DeviceModel):
    """Garage CO peaking at the rush hours; exhaust fans start at 12 and stop below 6 mg/m³."""

    device_type = "garage_co"
    fault_minutes = (6.0, 15.0)

    def _setup(self, rng: Random) -> None:
        self.base = rng.uniform(1.5, 3.0)
        self.co = self.base
        self.fans = False

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        h = local_hour(t_ms)
        traffic = bump(h, 8.0, 0.8) + bump(h, 18.3, 1.0) + 0.25 * bump(h, 12.5, 1.0)
        target = self.base + 14 * traffic * (0.6 if self.fans else 1.0)
        if self.fault:  # engines idling with the fans failed
            target, self.fans = 130.0, False
        self.co = wander(self.co, target, 180 if self.fault else 600, 0.6, dt_s, rng)
        if not self.fault:
            self.fans = self.co >= 6 if self.fans else self.co >= 12

    def _metrics(self) -> dict[str, Any]:
        return {"co_mgm3": round(max(self.co, 0.0), 1), "fans_running": self.fans}


class Chiller(DeviceModel):
    """A chiller on a day schedule: 7 °C supply, ΔT following the afternoon load."""

    device_type = "chiller"
    fault_minutes = (5.0, 20.0)

    def _setup(self, rng: Random) -> None:
        self.start_h, self.stop_h = rng.uniform(7.0, 8.0), rng.uniform(21.5, 22.5)
        self.supply, self.ret = 17.0, 17.5
        self.running = False

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        h = local_hour(t_ms)
        self.running = self.start_h <= h < self.stop_h and self.fault is None
        if self.running:
            supply, ret = 7.0, 7.0 + 2.5 + 3.0 * bump(h, 15, 3)
        else:
            supply, ret = 17.0, 17.5
        self.supply = wander(self.supply, supply, 900, 0.2, dt_s, rng)
        self.ret = wander(self.ret, ret, 900, 0.2, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        return {
            "supply_temp_c": round(self.supply, 1),
            "return_temp_c": round(self.ret, 1),
            "running": self.running,
            "tripped": self.fault is not None,
        }


CHECKPOINTS = (  # one round of a site's guard tour, in order
    *("cp-1f-gate-east", "cp-1f-lobby-01", "cp-1f-refuse-room", "cp-2f-clubhouse", "cp-roof-tank"),
    *("cp-b1-pump-room", "cp-b1-garage-01", "cp-b2-garage-03", "cp-b2-sump", "cp-1f-gate-west"),
)


class PatrolReader(DeviceModel):
    """A guard's reader: rounds of checkpoint scans; battery drains all day, charged at 08:00."""

    device_type = "patrol_reader"
    fault_minutes = (1.0, 3.0)

    def _setup(self, rng: Random) -> None:
        self.guards = [f"g-{rng.randint(1, 9999):04d}" for _ in range(2)]  # day and night shift
        self.next_point = 0
        self.next_scan_ms = 0
        self.noise = 0.0

    def _begin(self, t_ms: int, rng: Random) -> None:
        self.next_scan_ms = t_ms + int(rng.uniform(1, 10) * 60_000)

    def _guard(self, t_ms: float) -> str:
        return self.guards[0] if 8 <= local_hour(t_ms) < 20 else self.guards[1]

    def _step(self, t_ms: int, dt_s: float, rng: Random) -> None:
        while self.next_scan_ms <= t_ms:
            tag = CHECKPOINTS[self.next_point]
            self._event("PATROL_SCAN", tag=tag, guard=self._guard(self.next_scan_ms))
            self.next_point = (self.next_point + 1) % len(CHECKPOINTS)
            # A few minutes between checkpoints, a break after each round.
            gap_min = rng.uniform(2, 6) if self.next_point else rng.uniform(20, 60)
            self.next_scan_ms += int(gap_min * 60_000)
        self.noise = wander(self.noise, 0.0, 600, 0.005, dt_s, rng)

    def _metrics(self) -> dict[str, Any]:
        hours_off_dock = (local_hour(self.now_ms) - 8) % 24
        return {"battery_v": round(4.2 - 0.6 * hours_off_dock / 24 + self.noise, 2)}

    def _start_fault(self, t_ms: int, rng: Random) -> str:
        tag, guard = CHECKPOINTS[self.next_point - 1], self._guard(t_ms)
        if rng.random() < 0.5:
            self._event("SOS", tag=tag, guard=guard)
            return "sos"
        text = rng.choice(("lamp out above bay 31", "fire door propped open", "water on the floor"))
        self._event("PATROL_FINDING", tag=tag, guard=guard, text=text)
        return "finding"


MODELS: dict[str, type[DeviceModel]] = {m.device_type: m for m in DeviceModel.__subclasses__()}

# One site: (device_type, device-id prefix, count); ids are "{prefix}-{n}", n from 1.
SITE_FLEET: list[tuple[str, str, int]] = [
    ("elevator", "elev", 2),
    ("fire_panel", "fire-panel", 1),
    ("sprinkler_pipe", "sprinkler", 2),
    ("fire_water_tank", "fire-tank", 1),
    ("fire_pump", "fire-pump", 1),
    ("lighting_circuit", "light", 3),
    ("emergency_light", "elight", 2),
    ("water_pump", "water-pump", 2),
    ("water_tank", "water-tank", 1),
    ("sump_pit", "sump", 1),
    ("air_quality", "aq", 2),
    ("garage_co", "garage-co", 1),
    ("chiller", "chiller", 1),
    ("patrol_reader", "patrol", 1),
]


def build_fleet(sites: int, seed: int, fault_rate_per_h: float = 0.0) -> list[DeviceModel]:
    """Every device of `sites` sites (site-01, site-02, ...), initial states drawn from `seed`."""
    rng = Random(seed)
    return [
        MODELS[device_type](f"{prefix}-{n + 1}", f"site-{s:02d}", rng, fault_rate_per_h, index=n)
        for s in range(1, sites + 1)
        for device_type, prefix, count in SITE_FLEET
        for n in range(count)
    ]
