r"""Every default of a run, in one place. The other configs import this and override fields.

It names no data; run it on your own lists (or use a config that imports it, e.g. k400_b16.py):

  python -m actionclip_jax.main --config=configs/base.py --workdir=DIR \
      --config.data.train=train.txt --config.data.val=val.txt --config.data.labels=labels.csv

Any field can be overridden on the command line, e.g. `--config.optim.lr=1e-5`.
"""

import ml_collections


def get_config():
    config = ml_collections.ConfigDict()
    config.mode = "train"  # train: train, evaluating every `eval_every_epochs`; eval: one pass
    config.seed = 0  # data order, augmentation, initialisation, template draws

    # ------------------------------------------------------------------------------ model
    config.model = ml_collections.ConfigDict()
    # CLIP sizes for a randomly initialised model; ignored when `init.checkpoint` is given
    # (sizes are then read off the checkpoint).
    config.model.clip = ml_collections.ConfigDict(
        dict(
            embed_dim=512,
            image_resolution=224,
            vision_layers=12,
            vision_width=768,
            vision_patch_size=16,
            context_length=77,
            vocab_size=49408,
            transformer_width=512,
            transformer_heads=8,
            transformer_layers=12,
            # MLP nonlinearity of both towers: quick_gelu (OpenAI CLIP, the original) or gelu
            # (exact erf GELU, as most open_clip and some Hugging Face CLIP checkpoints).
            activation="quick_gelu",
            ln_epsilon=1e-5,  # LayerNorm epsilon of both towers (CLIP's; a Hugging Face config's)
        )
    )
    # none | shift | joint (ActionCLIP's pre/in-network prompts) | neighbour (Open-VCLIP: every
    # block's queries also attend to the keys/values of frames t+1 and t-1; no new parameters)
    config.model.frame_stage = "none"
    # meanP | conv1d | lstm | transf | transf_cls (ActionCLIP) | mean_logits (Open-VCLIP: the mean
    # of per-frame logits, i.e. of the normalised frame features, scored un-normalised)
    config.model.head = "transf"
    config.model.conv1d_original = False  # the original's reshape bug (see docs/deviations.md)
    config.model.position_rows = 77  # transf head's frame-position table, as the original
    config.model.head_layers = 6  # blocks of the transf / transf_cls heads, as the original
    config.model.dtype = "bfloat16"  # compute dtype; parameters are always fp32
    config.model.remat = False  # rematerialise transformer blocks (memory for compute)
    # What a rematerialised block keeps for the backward pass: nothing_saveable (least memory,
    # the whole block recomputed), dots_with_no_batch_dims_saveable (projection and MLP outputs
    # kept, attention recomputed) or dots_saveable (attention logits kept too).
    config.model.remat_policy = "nothing_saveable"
    # jax.nn.dot_product_attention's implementation in CLIP's towers: "" = JAX's choice (XLA
    # today), "xla", or "cudnn" (fused flash attention; NVIDIA GPUs with bf16/fp16 only).
    # Neither this nor the remat fields change parameters: checkpoints run with any of them.
    config.model.attention_impl = ""
    # video_text: ActionCLIP (video–text matching, KL loss); classifier: the paper's unimodal
    # baseline, the same video encoder with a 1-of-N linear layer over the data.labels classes
    # (on the un-normalised video feature) and cross-entropy; no text tower is built or imported;
    # class_texts: cross-entropy over all class texts (ViFi-CLIP; `text.classifier`, `loss.*`);
    # weight_interpolation: class_texts + Open-VCLIP's interpolated weight optimisation;
    # froster: class_texts + distillation towards the frozen original CLIP (`loss.distill_*`).
    config.model.objective = "video_text"

    # ----------------------------------------------------------------------- initialisation
    config.init = ml_collections.ConfigDict()
    # OpenAI CLIP .pt, ActionCLIP checkpoint, Hugging Face CLIPModel folder, open_clip state dict
    # or converted directory; "" = random init.
    config.init.checkpoint = ""
    # MLP activation of init.checkpoint where the file does not say it (a plain state dict with
    # OpenAI key names, as OpenAI's CLIP and open_clip both write): quick_gelu | gelu; "" = read
    # from the checkpoint, an error for such a state dict.
    config.init.activation = ""
    # Take the temporal head from the checkpoint when it has one (ActionCLIP files); with
    # False only the CLIP part is imported and the head starts fresh.
    config.init.load_head = True
    # The original CLIP weights (OpenAI .pt or converted directory), "" = init.checkpoint: θ₀ of
    # objective=weight_interpolation and of weight_space.interpolate, and the token embedding
    # that ViFi-CLIP's checkpoints leave out.
    config.init.clip = ""

    # -------------------------------------------------------------------------------- data
    config.data = ml_collections.ConfigDict()
    config.data.train = (
        ""  # list file (`<frames dir> <n> <label>` or `<video> <label>`) or TFDS dir
    )
    config.data.val = ""
    config.data.labels = ""  # CSV `id,name` or a built-in name (kinetics400, ucf101, hmdb51, ...)
    config.data.root = ""  # folder that relative list paths are relative to
    config.data.kind = ""  # "" = guess per line; frames | video
    config.data.heldout = ""  # optional second evaluation list (the demo's unseen combinations)
    config.data.tfds_data_dir = ""
    config.data.train_split = "train"  # for TFDS sources
    config.data.val_split = "validation"
    config.data.num_frames = 8  # T
    config.data.batch_size = 128  # global, over all devices and hosts (the original: 128)
    config.data.eval_batch_size = 64  # global
    config.data.workers = 8  # grain worker processes per host
    config.data.read_threads = 1
    config.data.flip = True  # horizontal flip; off for direction-sensitive labels
    config.data.randaug_n = 2  # RandAugment ops per frame (0: off; the original uses it on K400)
    config.data.randaug_m = 9
    config.data.scales = (1.0, 0.875, 0.75, 0.66)  # multi-scale crop
    config.data.p_jitter = 0.8  # colour jitter, per clip
    config.data.jitter_per_frame = True  # factors drawn per frame, as the original
    config.data.p_gray = 0.2
    config.data.num_clips = 1  # evaluation views: temporal clips ...
    config.data.num_crops = 1  # ... times spatial crops (1 or 3)
    # How an evaluation clip takes its frames: segments (TSN: the centre of each of T equal
    # segments, ActionCLIP / ViFi-CLIP) | window (SlowFast: T frames `eval_stride` apart, the
    # clips' windows spread from the start to the end of the video; Open-VCLIP / FROSTER).
    config.data.eval_sampling = "segments"
    config.data.eval_stride = 16  # frames between a window's frames (eval_sampling=window)
    config.data.eval_scale_size = 0  # short side before the eval crop; 0 = input size × 256/224
    # Pixel normalisation: clip (CLIP's mean/std) | imagenet (ViFi-CLIP's ImageNet mean/std).
    config.data.pixel_norm = "clip"
    config.data.strict = False  # fail on unreadable data instead of replacing it
    config.data.video_backend = "decord"  # decord | pyav: the decoder of video files
    # Seconds one video may take to decode: it decodes in a child process, killed past this
    # limit, and the video counts as unreadable (docs/data_reliability.md). 0: no limit.
    config.data.decode_timeout_s = 60.0
    # Evaluate like the original: drop the last partial batch (its 19,328 of 19,357 K400 videos).
    config.data.drop_last_eval = False

    # The synthetic moving-shapes data set of the demo, generated by library code on first use.
    config.data.synthetic = ml_collections.ConfigDict()
    config.data.synthetic.enabled = False  # True: train/val/heldout/labels/root are filled in
    config.data.synthetic.root = ""  # "" = $ACTIONCLIP_JAX_DATA or ~/.cache/actionclip_jax
    config.data.synthetic.train_per_class = 24
    config.data.synthetic.val_per_class = 6
    config.data.synthetic.heldout_per_class = 6
    config.data.synthetic.size = 64  # frame side in pixels (decord mis-decodes 48×48)

    # -------------------------------------------------------------------------------- text
    config.text = ml_collections.ConfigDict()
    # actionclip16 | single | bare | vificlip (1) | openvclip28 | froster29 | path to a file
    config.text.templates = "actionclip16"
    config.text.class_names = "verbatim"  # verbatim | words (CamelCase and _ split into words)
    # class_texts / weight_interpolation: the prompt-ensemble classifier is trained (recomputed
    # with gradients every step) or frozen (encoded once; the text tower is never updated).
    config.text.classifier = "trained"
    # A trained classifier's templates per step, drawn at random; 0 = all of them every step.
    # froster: bare templates ("{}") are always used, this many of the others drawn (the
    # original: 1).
    config.text.train_templates = 0
    # froster: a JSON file of "Name: description" class texts by class name (FROSTER's
    # rephrased classes; format in actionclip_jax/descriptions.py); "" = the plain class names.
    config.text.descriptions = ""

    # -------------------------------------------------------------------------------- loss
    # Settings of the class_texts, weight_interpolation and froster objectives.
    config.loss = ml_collections.ConfigDict()
    config.loss.label_smoothing = 0.0  # ViFi-CLIP: 0.1
    config.loss.mixup_alpha = 0.0  # Beta(α, α) of Mixup; 0 = off (ViFi-CLIP: 0.8)
    config.loss.cutmix_alpha = 0.0  # ... of CutMix; 0 = off (ViFi-CLIP: 1.0)
    config.loss.mix_switch_prob = 0.5  # CutMix rather than Mixup, when both are on
    config.loss.interpolation_alpha = (0.0, 0.6)  # α ~ U(low, high) of weight_interpolation
    config.loss.interpolation_weight = 0.5  # the loss at α·θ₀ + (1 − α)·θ, weighted
    # froster: weight of the distillation towards the frozen θ₀ (frame, class-text features)
    config.loss.distill_weight = 2.0
    # froster: cosine (1 − mean cos; the original since 2024-11) | l2 (mean ‖s − t‖₂; before)
    config.loss.distill_form = "cosine"

    # --------------------------------------------------------------------------- optimiser
    config.optim = ml_collections.ConfigDict()
    config.optim.lr = 5e-6  # text tower (and logit scale)
    config.optim.visual_ratio = 1.0  # visual tower lr = lr × ratio (the original's `ratio`)
    # Temporal head lr = lr × ratio (the original's `f_ratio`); also the lr ratio of the
    # classifier's linear layer (model.objective=classifier), a new layer like the head.
    config.optim.fusion_ratio = 10.0
    # froster: lr ratio of its residual projectors (projector_v, projector_t; the original: 1)
    config.optim.projector_ratio = 1.0
    config.optim.b1 = 0.9
    config.optim.b2 = 0.98
    config.optim.eps = 1e-8
    config.optim.weight_decay = 0.2  # on every parameter, as the original
    config.optim.weight_decay_1d = True  # False: no decay of 1-D parameters (Open-VCLIP)
    config.optim.epochs = 50
    config.optim.warmup_epochs = 5  # linear from 0, then cosine to 0
    config.optim.warmup_start_ratio = 0.0  # warm-up starts at lr × this (Open-VCLIP: 0.01)
    config.optim.end_lr_ratio = 0.0  # the cosine ends at lr × this (ViFi-CLIP, Open-VCLIP: 0.01)
    config.optim.grad_accum = 1  # micro-batches per update
    config.optim.clip_grad_norm = 0.0  # 0: off (the original does not clip)
    config.optim.freeze = ""  # regex over parameter paths, e.g. "clip/visual/.*"; "" = none
    # (regex, multiplier) pairs: matching parameters get their group's lr × multiplier.
    config.optim.lr_mults = ()

    # -------------------------------------------------------------------- evaluation protocol
    # How evaluation runs and is reported; `actionclip_jax.protocols` turns this into tasks.
    config.eval = ml_collections.ConfigDict()
    # standard: one pass over data.val; zero_shot / few_shot: every list of `splits`, mean ± std
    # over them; base2novel: the `base` and `novel` splits and their harmonic mean.
    config.eval.protocol = "standard"
    # Lists evaluated one after another (built-in names such as "ucf101/val1", or paths);
    # () = data.val alone.
    config.eval.splits = ()
    config.eval.split_labels = ()  # label file per split (K600, base/novel); () = data.labels
    config.eval.split_names = ()  # result names per split; () = derived from the list names
    # Half-class zero-shot: this many random 50% class subsets (softmax over the subset's
    # classes only), mean ± std over them; 0 = off. Subset i is drawn from (half_class_seed, i).
    config.eval.half_class_subsets = 0
    config.eval.half_class_seed = 0
    config.eval.shots = 0  # K of a K-shot training list (recorded in the results); 0 = not few-shot
    # How a video's views and templates become one score per class: softmax_mean (ActionCLIP) |
    # softmax_sum (ViFi-CLIP) | logit_sum (Open-VCLIP, FROSTER); see actionclip_jax/scoring.py.
    config.eval.view_reduce = "softmax_mean"
    # Per-class CSV, confusion PNG and top-confusions table per pass (also to TensorBoard).
    config.eval.artifacts = True
    config.eval.top_confusions = 20  # rows of the top-confusions table

    # ------------------------------------------------------------------------- weight space
    # What is evaluated after training (the final passes) and by evaluation-only runs; the
    # checkpoints themselves are untouched. Tools: `python -m actionclip_jax.weight_space`.
    config.weight_space = ml_collections.ConfigDict()
    # (first, last): the uniform average of the run's epoch checkpoints first..last (SWA;
    # Open-VCLIP: (2, 22); needs checkpoint.keep_epochs); () = the newest weights.
    config.weight_space.average_epochs = ()
    # r: evaluate r·θ₀ + (1 − r)·θ, θ₀ the original CLIP (init.clip, else init.checkpoint);
    # 0 = off (Open-VCLIP: 0.5).
    config.weight_space.interpolate = 0.0

    # ---------------------------------------------------------------------------- sharding
    config.sharding = ml_collections.ConfigDict()
    config.sharding.fsdp = False  # shard parameters and optimizer state over the data axis
    config.sharding.fsdp_min_size = 2**18  # smaller tensors stay replicated

    # ---------------------------------------------------------------- checkpoints and logs
    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_steps = 1000
    config.checkpoint.keep = 3  # last N
    config.checkpoint.keep_best = True  # also keep the best by top-1
    # Also save and keep a checkpoint at the end of every epoch (what weight_space.average_epochs
    # averages); one checkpoint of the parameters and optimiser state per epoch.
    config.checkpoint.keep_epochs = False
    config.checkpoint.async_save = True
    config.log_every_steps = 50
    config.eval_every_epochs = 1
    config.max_steps = 0  # stop after this many steps (0: run all epochs)
    return config
