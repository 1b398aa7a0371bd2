# Source recipes (issue 17; issue 12's narrator recipe): each published claim as a named target writing
# results/recipes/<name>/table.md (the claim, our numbers over seeds, the verdict). Not part of `all`: `make recipes` runs every recipe, or
# `snakemake --cores 2 recipe_<name>` one. A recipe run is filed under a key derived from its parameters
# (egonlq.grounding.recipes.run_key), so a run two recipes need is trained once. Training and prediction reuse
# the VSLNet rules, only their paths and run lookup change.


use rule train_vslnet as train_recipe_run with:
    input:
        unpack(recipe_train_inputs),
    output:
        model=f"{recipe_run_dir('{recipe_run}', '{seed}')}/model.safetensors",
        config=f"{recipe_run_dir('{recipe_run}', '{seed}')}/config.json",
        metrics=f"{recipe_run_dir('{recipe_run}', '{seed}')}/metrics.csv",
        summary=f"{recipe_run_dir('{recipe_run}', '{seed}')}/summary.json",
    params:
        spec=lambda wc: json.dumps(
            RECIPES.runs[wc.recipe_run].train_spec_dict(int(wc.seed)) | {"text": VCFG["text"]}, sort_keys=True
        ),
        out_dir=lambda wc, output: Path(output.model).parent,
    log:
        "results/logs/train_recipe_run/{recipe_run}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_recipe_run/{recipe_run}_seed{seed}.tsv"


use rule predict_vslnet as predict_recipe_run with:
    input:
        unpack(recipe_predict_inputs),
    output:
        "results/predictions/vslnet_{recipe_run}_seed{seed}/{split}.json",
    params:
        label_mode=lambda wc: RECIPES.runs[wc.recipe_run].label_mode,
    log:
        "results/logs/predict_recipe_run/{recipe_run}_seed{seed}_{split}.log",


rule recipe_table:
    input:
        metrics=recipe_metrics,
        code=src_files("grounding", "grounding.recipes"),
    output:
        parquet="results/recipes/{recipe}/table.parquet",
        markdown=report("results/recipes/{recipe}/table.md", caption="../report/recipe_table.rst",
                        category="4. Recipes", labels={"recipe": "{recipe}", "figure": "table"}),
        plot=report("results/recipes/{recipe}/plot.png", caption="../report/recipe_plot.rst",
                    category="4. Recipes", labels={"recipe": "{recipe}", "figure": "plot"}),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
        vslnet=json.dumps({k: VCFG[k] for k in ("label_mode", "model", "train")}, sort_keys=True),
        recipes=json.dumps(config["recipes"], sort_keys=True),
        sources=",".join(sorted(RECIPE_SOURCES)),
    log:
        "results/logs/recipe_table/{recipe}.log",
    conda:
        "../../envs/vslnet.yaml"
    shell:
        "exec python -m egonlq.cli recipe-table --recipe {wildcards.recipe} --metrics {input.metrics:q}"
        " --vslnet {params.vslnet:q} --recipes {params.recipes:q} --sources {params.sources:q} {params.synthetic}"
        " --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q} > {log:q} 2>&1"


# One target per recipe, recipe_<name> (llm_pretrain, naq, naq_zeroshot, naq_lowshot, narrator): its table.
for _recipe in RECIPES.recipes:

    rule:
        name:
            f"recipe_{_recipe}"
        input:
            f"results/recipes/{_recipe}/table.md",
        localrule: True


rule recipes:
    input:
        expand("results/recipes/{recipe}/table.md", recipe=RECIPES.recipes),
        keyframe_recipe_targets,  # the keyframe recipe's table (keyframes.smk), when that stage is on
        "results/recipes/dualenc/table.md",  # LaViLa's claim (dualenc.smk)
        stage_recipe_targets,  # the step recipe's table (steps.smk), when that stage is on
    localrule: True
