#!/usr/bin/env bash
# The short CUDA check run on a lent GPU machine (see docs/performance.md, "On a GPU").
# Expects the project's Python dependencies importable (wheels in .whl/ are installed to /tmp/site
# when present) and writes its logs to $OUT (or ./gpu-check/).
set -u
OUT=${OUT:-gpu-check}; mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, xarray, zarr; print('torch', torch.__version__, torch.cuda.get_device_name(), 'xarray', xarray.__version__, 'zarr', zarr.__version__)"
timeout 270 python3 -m pytest -q -p no:cacheprovider -p no:benchmark tests/test_cuda.py tests/test_masking.py tests/test_model.py tests/test_explain_engine.py tests/test_estimators.py tests/test_training.py 2>&1 | tee "$OUT/pytest.log" | tail -15
timeout 120 python3 benchmarks/engine_devices.py --sites 1000 --cpu-sites 100 --repeats 3 2>&1 | tee "$OUT/engine_devices.log"
timeout 150 python3 benchmarks/explain_peers.py --device cuda --sites 64 --parts exact,roofline --repeats 3 2>&1 | grep -v Warning | tee "$OUT/explain_peers.log"
