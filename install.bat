@echo off
rem MedServer installer for Windows: the same steps as install.sh.
rem
rem   install.bat                  asks for a Hugging Face token, installs MedServer
rem   install.bat --yes            no questions
rem   install.bat --yes --dev      also the test tools (the [dev] extra)
rem   install.bat --model 4        then download MedGemma 1.5 4B's weights
rem   install.bat --wheelhouse DIR no internet: install from a folder of wheels
rem   install.bat --help
rem
rem It creates .venv in this folder (kept when it already exists), installs
rem PyTorch first (pinned), then MedServer itself in editable mode, then the
rem optional GPU extra the machine can use. Running it again is safe and quick.
setlocal EnableExtensions DisableDelayedExpansion

if not defined TORCH_VERSION set "TORCH_VERSION=2.13.0"
cd /d "%~dp0"
set "VPY=%~dp0.venv\Scripts\python.exe"

rem --- Flags (install.sh: "Flags") ----------------------------------------------
set "ASSUME_YES=0"
set "DEV=0"
set "HF_TOKEN_ARG="
set "TORCH_INDEX_URL="
set "MODEL="
set "WHEELHOUSE="

:parse
if "%~1"=="" goto :parsed
if /i "%~1"=="--yes" (set "ASSUME_YES=1" & shift & goto :parse)
if /i "%~1"=="-y" (set "ASSUME_YES=1" & shift & goto :parse)
if /i "%~1"=="--dev" (set "DEV=1" & shift & goto :parse)
if /i "%~1"=="--hf-token" goto :opt_hf_token
if /i "%~1"=="--torch-index-url" goto :opt_torch_index_url
if /i "%~1"=="--model" goto :opt_model
if /i "%~1"=="--wheelhouse" goto :opt_wheelhouse
if /i "%~1"=="-h" goto :usage
if /i "%~1"=="--help" goto :usage
set "ERR=unknown option '%~1' (see install.bat --help)"
goto :fail

:opt_hf_token
if "%~2"=="" (set "ERR=--hf-token needs a value" & goto :fail)
set "HF_TOKEN_ARG=%~2"
shift & shift & goto :parse

:opt_torch_index_url
if "%~2"=="" (set "ERR=--torch-index-url needs a value" & goto :fail)
set "TORCH_INDEX_URL=%~2"
shift & shift & goto :parse

:opt_model
if "%~2"=="" (set "ERR=--model needs a value" & goto :fail)
set "MODEL=%~2"
shift & shift & goto :parse

:opt_wheelhouse
if "%~2"=="" (set "ERR=--wheelhouse needs a value" & goto :fail)
set "WHEELHOUSE=%~f2"
shift & shift & goto :parse

:usage
echo Usage: install.bat [options]
echo.
echo Install MedServer into %~dp0.venv
echo.
echo Options:
echo   --yes                    ask no questions (no Hugging Face token prompt)
echo   --dev                    also install the test tools (the [dev] extra)
echo   --hf-token TOKEN         save this Hugging Face token to .env (readable by you only)
echo   --torch-index-url URL    where pip gets PyTorch, e.g. a CUDA index from
echo                            https://pytorch.org/get-started/locally/
echo   --model 4^|27^|27t         then download that model's weights (medserver download)
echo   --wheelhouse DIR         install every package from the wheels in DIR, with no
echo                            index and no internet (make DIR on a connected machine
echo                            with scripts/make_wheelhouse.sh --platform win_amd64)
echo   -h, --help               show this help and exit
echo.
echo Environment:
echo   TORCH_VERSION            the PyTorch release to install (default: %TORCH_VERSION%)
exit /b 0

:parsed
rem Checks of the flags' values (install.sh: after "Flags")
if not defined MODEL goto :model_checked
if "%MODEL%"=="4" goto :model_checked
if "%MODEL%"=="27" goto :model_checked
if "%MODEL%"=="27t" goto :model_checked
set "ERR=--model takes 4, 27 or 27t (the models that download), not '%MODEL%'"
goto :fail
:model_checked
if not defined WHEELHOUSE goto :wheelhouse_checked
if defined TORCH_INDEX_URL (set "ERR=--wheelhouse and --torch-index-url do not go together: the wheelhouse holds PyTorch" & goto :fail)
if not exist "%WHEELHOUSE%\" (set "ERR=--wheelhouse %WHEELHOUSE%: no such folder" & goto :fail)
if not exist "%WHEELHOUSE%\*.whl" (set "ERR=--wheelhouse %WHEELHOUSE% holds no wheels (*.whl); make it with scripts/make_wheelhouse.sh" & goto :fail)
:wheelhouse_checked

rem --- 1. Python 3.10 or newer (install.sh step 1) -------------------------------
echo ==^> Checking Python
set "PY="
where py >nul 2>&1
if not errorlevel 1 (
  py -3 -c "import sys" >nul 2>&1
  if not errorlevel 1 set "PY=py -3"
)
if not defined PY (
  where python >nul 2>&1
  if not errorlevel 1 (
    python -c "import sys" >nul 2>&1
    if not errorlevel 1 set "PY=python"
  )
)
if not defined PY (
  set "ERR=Python 3.10 or newer is needed and none was found. Install it from https://www.python.org/downloads/ (tick 'Add python.exe to PATH') and run install.bat again."
  goto :fail
)
set "PYVER=unknown"
for /f "delims=" %%v in ('%PY% -c "import sys; print(sys.version.split()[0])"') do set "PYVER=%%v"
%PY% -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)"
if errorlevel 1 (
  set "ERR=MedServer needs Python 3.10 or newer; %PY% is %PYVER%. Install a newer Python from https://www.python.org/downloads/"
  goto :fail
)
echo     %PY% (%PYVER%)

rem --- 2. The virtual environment, created once (install.sh step 2) ----------------
if exist "%VPY%" goto :venv_exists
echo ==^> Creating the virtual environment .venv
%PY% -m venv .venv
if errorlevel 1 (set "ERR=could not create .venv with %PY%" & goto :fail)
goto :venv_ready
:venv_exists
echo ==^> Using the existing virtual environment .venv
"%VPY%" -c "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)" >nul 2>&1
if errorlevel 1 (set "ERR=.venv does not run Python 3.10 or newer. Delete the .venv folder and run install.bat again." & goto :fail)
:venv_ready
set "PIP="%VPY%" -m pip install -q --disable-pip-version-check"
rem With --wheelhouse, pip looks at that folder only: no index, no network.
if defined WHEELHOUSE set "PIP=%PIP% --no-index --find-links "%WHEELHOUSE%""

rem --- 3. pip (install.sh step 3) ------------------------------------------------
if not defined WHEELHOUSE goto :pip_online
echo ==^> Installing from the wheelhouse %WHEELHOUSE% (no index, no network)
if not exist "%WHEELHOUSE%\pip-*.whl" (echo     No pip wheel there; keeping the pip of .venv & goto :pip_done)
goto :pip_upgrade
:pip_online
echo ==^> Upgrading pip
:pip_upgrade
%PIP% --upgrade pip
if errorlevel 1 (set "ERR=could not upgrade pip (see pip's messages above)" & goto :fail)
:pip_done

rem --- 4. NVIDIA GPU (install.sh step 4) ----------------------------------------
rem One line per GPU, e.g. "NVIDIA GeForce RTX 4090, 8.9"; the first one decides.
set "GPU_NAME="
set "GPU_CC="
where nvidia-smi >nul 2>&1
if errorlevel 1 goto :gpu_done
for /f "tokens=1,2 delims=," %%a in ('nvidia-smi --query-gpu^=name^,compute_cap --format^=csv^,noheader 2^>nul') do (
  if not defined GPU_NAME (
    set "GPU_NAME=%%a"
    set "GPU_CC=%%b"
  )
)
:gpu_done
if defined GPU_CC set "GPU_CC=%GPU_CC: =%"
rem (One-line ifs, not blocks: a GPU name may hold parentheses.)
if defined GPU_NAME echo ==^> NVIDIA GPU found: %GPU_NAME% (compute capability %GPU_CC%)
if not defined GPU_NAME echo ==^> No NVIDIA GPU found (nvidia-smi absent or silent); MedServer will run on the CPU

rem --- 5. PyTorch, pinned, before anything that depends on it (install.sh step 5) --
if defined WHEELHOUSE (
  echo ==^> Installing PyTorch %TORCH_VERSION% from the wheelhouse
  %PIP% torch==%TORCH_VERSION%
) else if defined TORCH_INDEX_URL (
  echo ==^> Installing PyTorch %TORCH_VERSION% from %TORCH_INDEX_URL%
  %PIP% torch==%TORCH_VERSION% --index-url "%TORCH_INDEX_URL%"
) else (
  echo ==^> Installing PyTorch %TORCH_VERSION% ^(the first time can take minutes^)
  if defined GPU_NAME (
    echo     Note: PyPI's PyTorch for Windows has no CUDA. For the GPU, run install.bat again
    echo     with --torch-index-url and the CUDA index https://pytorch.org/get-started/locally/ shows.
  )
  %PIP% torch==%TORCH_VERSION%
)
if errorlevel 1 (set "ERR=could not install PyTorch %TORCH_VERSION% (see pip's messages above)" & goto :fail)

rem Later installs must not swap this torch for another release.
set "CONSTRAINTS=%TEMP%\medserver-constraints-%RANDOM%.txt"
> "%CONSTRAINTS%" echo torch==%TORCH_VERSION%
rem setuptools' generic "editable installation" banner is noise here.
set "PYTHONWARNINGS=ignore"

rem --- 6. MedServer itself (editable), with the test tools for --dev (install.sh step 6)
if "%DEV%"=="1" (
  echo ==^> Installing MedServer and its test tools ^(pip install -e ".[dev]"^)
  %PIP% -c "%CONSTRAINTS%" -e ".[dev]"
) else (
  echo ==^> Installing MedServer ^(pip install -e .^)
  %PIP% -c "%CONSTRAINTS%" -e .
)
if errorlevel 1 (set "ERR=could not install MedServer (see pip's messages above)" & goto :fail)

rem --- 7. Optional GPU extras: a failure is a warning (install.sh step 7) ----------
rem SGLang runs on Linux only (install.sh gives it .venv-sglang there), so Windows gets
rem the quantize extra (bitsandbytes) alone and MedServer runs on Transformers.
set "EXTRAS=none"
if not defined GPU_NAME goto :extras_done
echo     SGLang skipped: it runs on Linux only ^(install.sh gives it .venv-sglang there^); MedServer uses Transformers here.
echo ==^> Installing 4-bit quantization support ^(pip install -e ".[quantize]"^)
%PIP% -c "%CONSTRAINTS%" -e ".[quantize]" > ".venv\install-quantize.log" 2>&1
if errorlevel 1 (
  echo install.bat: warning: bitsandbytes could not be installed, so -q ^(4-bit weights^) will not work. pip's messages: .venv\install-quantize.log 1>&2
) else (
  del ".venv\install-quantize.log" >nul 2>&1
  set "EXTRAS=quantize"
)
:extras_done
del "%CONSTRAINTS%" >nul 2>&1

rem --- 8. System tools for the tests (install.sh step 8: apt-get, Linux only) -------
if "%DEV%"=="1" (
  echo ==^> The browser and reverse-proxy tests need Chromium, nginx and openssl; install.bat does not install them.
)

rem --- 9. Hugging Face token, in .env readable by you only (install.sh step 9) ----
set "TOKEN_STATE="
if defined HF_TOKEN_ARG (
  call :write_token "%HF_TOKEN_ARG%"
  set "TOKEN_STATE=saved to .env"
  goto :token_done
)
findstr /r /b /c:"HF_TOKEN=." ".env" >nul 2>&1
if not errorlevel 1 (set "TOKEN_STATE=already in .env" & goto :token_done)
if "%ASSUME_YES%"=="1" (
  set "TOKEN_STATE=not set (add HF_TOKEN=... to .env or pass --hf-token; the demo model needs none)"
  goto :token_done
)
echo ==^> Hugging Face token
echo     The MedGemma models are gated: accept their terms on huggingface.co, then paste
echo     a read token from https://huggingface.co/settings/tokens (Enter to skip).
set "TOKEN="
rem PowerShell reads it without showing it; plain set /p is the fallback.
set "PS_READ=powershell -NoProfile -Command "$t = Read-Host '    HF token' -AsSecureString; [Runtime.InteropServices.Marshal]::PtrToStringAuto([Runtime.InteropServices.Marshal]::SecureStringToBSTR($t))""
where powershell >nul 2>&1
if errorlevel 1 (
  set /p "TOKEN=    HF token: "
) else (
  for /f "usebackq delims=" %%t in (`%PS_READ%`) do set "TOKEN=%%t"
)
if not defined TOKEN (
  set "TOKEN_STATE=not set (the demo model and local folders need none)"
  goto :token_done
)
call :write_token "%TOKEN%"
set "TOKEN="
set "TOKEN_STATE=saved to .env"
:token_done

rem --- 10. The model's weights, with medserver's own downloader (install.sh step 10)
set "MODEL_STATE="
set "MODEL_FAILED=0"
if not defined MODEL goto :model_done
echo ==^> Downloading the weights of -m %MODEL% (medserver download -m %MODEL%; run again to resume)
"%~dp0.venv\Scripts\medserver.exe" download -m %MODEL%
if errorlevel 1 (
  set "MODEL_STATE=-m %MODEL% NOT downloaded, see the error above"
  set "MODEL_FAILED=1"
) else (
  set "MODEL_STATE=-m %MODEL% downloaded"
)
:model_done

rem --- 11. Summary (install.sh step 11) -------------------------------------------
echo ==^> Summary
if defined WHEELHOUSE echo     Installed from the wheelhouse %WHEELHOUSE%, without the network
"%VPY%" -c "import sys, torch; print(f'    Python {sys.version.split()[0]}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')"
if not defined GPU_NAME echo     GPU: none found
if not defined GPU_NAME goto :gpu_summary_done
echo     GPU: %GPU_NAME% (compute capability %GPU_CC%)
"%VPY%" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >nul 2>&1
if errorlevel 1 echo install.bat: warning: PyTorch cannot use the GPU. Run install.bat again with --torch-index-url and a CUDA index from https://pytorch.org/get-started/locally/ 1>&2
:gpu_summary_done
echo     SGLang engine: not installed ^(Linux only^)
echo     Optional extras: %EXTRAS%
if "%DEV%"=="1" echo     Test tools: installed (.[dev])
echo     Hugging Face token: %TOKEN_STATE%
if defined MODEL_STATE echo     Model weights: %MODEL_STATE%
if "%MODEL_FAILED%"=="1" (
  set "ERR=the weights of -m %MODEL% could not be downloaded, see above; MedServer itself is installed. Retry with: .venv\Scripts\medserver download -m %MODEL%"
  goto :fail
)
echo.
echo Next:
if defined MODEL goto :next_model
echo     .venv\Scripts\activate ^&^& medserver -m demo    (tiny built-in model, no GPU, no download)
echo     .venv\Scripts\activate ^&^& medserver -m 4       (MedGemma 1.5 4B: needs the token and a GPU)
goto :next_done
:next_model
echo     .venv\Scripts\activate ^&^& medserver -m %MODEL%
:next_done
echo     To run it at boot: README.md, "Run as a service" (deploy\windows\install-service.ps1).
exit /b 0

rem --- Helpers ---------------------------------------------------------------------

:write_token
rem Replace any HF_TOKEN line in .env, keep the others; only this user may read the file.
if exist ".env" (
  findstr /v /b /c:"HF_TOKEN=" ".env" > ".env.tmp"
) else (
  type nul > ".env.tmp"
)
icacls ".env.tmp" /inheritance:r /grant:r "%USERNAME%:F" >nul
>> ".env.tmp" echo HF_TOKEN=%~1
move /y ".env.tmp" ".env" >nul
icacls ".env" /inheritance:r /grant:r "%USERNAME%:F" >nul
exit /b 0

:fail
echo install.bat: error: %ERR% 1>&2
if defined CONSTRAINTS del "%CONSTRAINTS%" >nul 2>&1
exit /b 1
