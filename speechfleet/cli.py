"""speechfleet serve | api | worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from loguru import logger

from speechmodels.config import ConfigError, load_model_configs


def _load_configs(config: Path):
    try:
        return load_model_configs(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Speech inference on a Celery + Redis worker fleet."""


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="model_configs YAML (default: $SPEECHFLEET_CONFIG or ./config.yml)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12080, show_default=True, type=int)
@click.option("--device", default=None, help="override every model's device (cpu, cuda:N)")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="keep the private Redis in an append-only file here, so a restart loses no accepted job "
                   "(default: ephemeral, a restart starts empty)")
@click.option("--fsync", type=click.Choice(["everysec", "always"]), default="everysec", show_default=True,
              help="with --data-dir: appendfsync policy (everysec: a machine crash can lose the last second)")
def serve(config_path: Path | None, host: str, port: int, device: str | None, data_dir: Path | None,
          fsync: str) -> None:
    """Everything on one machine: Redis (private unless REDIS_URL is set), a worker per model, the API."""
    from speechfleet.serve import Fleet

    config_path = (config_path or Path(os.environ.get("SPEECHFLEET_CONFIG", "config.yml"))).resolve()
    configs = _load_configs(config_path)
    sys.exit(Fleet(config_path, configs, host, port, device, data_dir=data_dir, fsync=fsync).run())


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=12080, show_default=True, type=int)
def api(config_path: Path | None, host: str, port: int) -> None:
    """The HTTP API alone, against REDIS_URL."""
    import uvicorn

    from speechfleet.memory import return_large_blocks

    return_large_blocks()
    from api.app import create_app
    from jobcontract.settings import APISettings

    settings = APISettings(**({"config": config_path} if config_path else {}))
    _load_configs(settings.config)
    from api.http_protocol import EnvelopeHttpToolsProtocol

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_graceful_shutdown=10,
                http=EnvelopeHttpToolsProtocol)


@main.command()
@click.option("--models", default=None, help="comma-separated model names from the config")
@click.option("--webhooks", is_flag=True, help="deliver webhooks (the 'webhooks' queue) instead of running models")
@click.option("--device", default=None, help="cpu or cuda:N (default: each model's device_config)")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(models: str | None, webhooks: bool, device: str | None, config_path: Path | None, loglevel: str) -> None:
    """A worker process serving the named models from their queues (or delivering webhooks), against REDIS_URL."""
    from speechfleet.memory import restart_with_huge_pages, return_large_blocks

    restart_with_huge_pages()  # before anything is loaded: the loader reads the tunable at start only
    # numpy's BLAS must not spin threads of its own beside the model runtime's (measured: it
    # doubled the worker's CPU per request); set before numpy is first imported
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    return_large_blocks()
    from jobcontract.settings import WorkerSettings
    from workers.worker_main import run_webhook_worker, run_worker

    settings = WorkerSettings(**({"config": config_path} if config_path else {}))
    if webhooks == bool(models):
        raise click.ClickException("give either --models or --webhooks")
    if webhooks:
        run_webhook_worker(settings, loglevel=loglevel)
        return
    configs = {config.name: config for config in _load_configs(settings.config)}
    wanted = [name.strip() for name in (models or "").split(",") if name.strip()]
    unknown = [name for name in wanted if name not in configs]
    if unknown or not wanted:
        raise click.ClickException(f"unknown model(s) {unknown}; configured: {sorted(configs)}")
    logger.info("worker for {} on {}", wanted, device or "each model's configured device")
    run_worker([configs[name] for name in wanted], settings, device=device, loglevel=loglevel)


if __name__ == "__main__":
    main()
