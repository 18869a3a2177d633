# The two commands: `make grade` and `make test`. Both set up .venv on first use.
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

SUBMISSION ?= starter
ASSIGNMENT ?= all
RESULTS    ?= results.json
DEVICE     ?=
PROBLEM    ?=
JOBS       ?=
PYTEST_ARGS ?=

HW         ?= hw2
ENV        ?=
ARGS       ?=

.PHONY: notebook grade test starter check-starter list bench public-strength setup clean train hw1-lesson experiments experts release autograde report gradescope

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

## grade SUBMISSION (default starter/): a table, and RESULTS in Gradescope's results.json format
grade: $(STAMP)
	$(PY) -m autograder grade --submission "$(SUBMISSION)" --assignment $(ASSIGNMENT) \
		--results "$(RESULTS)" $(if $(DEVICE),--device $(DEVICE)) $(if $(PROBLEM),--problem "$(PROBLEM)") \
		$(if $(JOBS),--jobs $(JOBS))

## the project's own tests (slow integration tests included; select with -m slow / -m "not slow")
test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

## the handout notebook of HW (hw1|hw2) in Jupyter; its grade cells grade SUBMISSION (default starter/) on DEVICE
notebook: $(STAMP)
	GRADER_SUBMISSION="$(abspath $(SUBMISSION))" $(if $(DEVICE),GRADER_DEVICE=$(DEVICE)) \
		$(PY) -m jupyter lab assignments/source/$(HW)/$(HW).ipynb

## run an experiment with SUBMISSION's code: make train HW=hw1 ENV=Hopper-v5 METHOD=dagger (see README)
train: $(STAMP)
	$(PY) -m rlkit.train --hw $(HW) --submission "$(SUBMISSION)" $(if $(ENV),--env $(ENV)) \
		$(if $(METHOD),--method $(METHOD)) $(ARGS)

## hw1 on MuJoCo: BC vs DAgger for every task and seed, then a Markdown table (runs/hw1_lesson/table.md)
## make hw1-lesson SUBMISSION=solutions TASKS="Hopper-v5 Ant-v5" SEEDS="0 1 2"
hw1-lesson: $(STAMP)
	$(PY) -m rlkit.experiments.hw1_lesson --submission "$(SUBMISSION)" $(if $(TASKS),--tasks $(TASKS)) \
		$(if $(SEEDS),--seeds $(SEEDS)) $(ARGS)

## CS285's hw2 experiment sets and comparison plots: make experiments SET=cartpole|lunar|pendulum|cheetah|all
experiments: $(STAMP)
	$(PY) -m rlkit.experiments.hw2_sets --submission "$(SUBMISSION)" --set $(or $(SET),cartpole) $(ARGS)

## instructor: train (or resume) the hw1 MuJoCo experts, one task after another or ENV=Hopper-v5;
## each improved actor goes to rlkit/experts/ (checkpoints in ~/.cache/rl-homework-kit/experts/)
experts: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m instructor.experts.train $(if $(ENV),--env $(ENV),--all) \
		--steps $(or $(STEPS),1000000) $(ARGS)

## regenerate starter/ from solutions/ with nbgrader's ClearSolutions
starter: $(STAMP)
	$(PY) -m autograder.starter

check-starter: $(STAMP)
	$(PY) -m autograder.starter --check

list: $(STAMP)
	$(PY) -m autograder list

## the grade's wall time now and at BASE (default: the grader before the speed-up), alternating, as medians;
## per-problem times: $(PY) bench/grade_time.py; where each problem's time goes: $(PY) bench/profile_grade.py
bench: $(STAMP)
	$(PY) bench/speed.py $(if $(BASE),--base $(BASE)) $(ARGS)

## instructor: the buggy variants of instructor/variants that only the hidden problems catch (what a student grading
## locally cannot see), each variant's points lost with and without the reference; ASSIGNMENT=hw1|hw2, JOBS at once
public-strength: $(STAMP)
	$(PY) bench/public_strength.py --homework $(ASSIGNMENT) $(if $(JOBS),--jobs $(JOBS)) $(ARGS)

## instructor: the student release in build/release (nbgrader generate_assignment; fails on solution code)
release: $(STAMP)
	$(PY) -m instructor release

## instructor: grade SUBMISSIONS (<student>/<assignment>/ folders; default: made-up samples) into nbgrader's
## gradebook, JOBS students at once (default: the usable cores), on DEVICE; only new or changed ones, or all
## graded with other settings (DEVICE, TIME_LIMIT, STUDENT_TIME_LIMIT, …; FORCE=1: all)
autograde: $(STAMP)
	$(PY) -m instructor autograde $(or $(SUBMISSIONS),--samples) $(if $(DEVICE),--device $(DEVICE)) \
		$(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(filter-out 0,$(FORCE)),--force) $(if $(STUDENT_TIME_LIMIT),--total-seconds $(STUDENT_TIME_LIMIT)) $(ARGS)

## instructor: the class report (build/report/report.md + PNGs) after autograde; SOURCE=export.zip for
## Gradescope's "Export Submissions" zip; MANIFEST=build/class/manifest.json checks a made-up class
report: $(STAMP)
	$(PY) -m instructor report $(or $(SOURCE),build/course) --out $(or $(OUT),build/report) \
		$(if $(MANIFEST),--manifest $(MANIFEST))

## instructor: one Gradescope autograder zip per assignment, in build/gradescope
gradescope: $(STAMP)
	$(PY) -m instructor gradescope

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis results.json
