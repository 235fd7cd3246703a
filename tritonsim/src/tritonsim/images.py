"""Images: the seeded public catalog plus images the account creates from machines."""

import copy
import hashlib
import uuid

from .clock import iso_now
from .errors import invalid_argument, missing_parameter, not_authorized, not_found

_FILTERS = ("version", "os", "type", "owner")


def to_api(image):
    return {k: v for k, v in image.items() if not k.startswith("_")}


class ImageService:
    def __init__(self, store, backend, account, machines):
        self.store = store
        self.backend = backend
        self.account = account
        self.machines = machines
        self.lock = store.lock

    def _visible(self, image):
        return image["public"] or image["owner"] == self.account.uuid

    def list(self, params):
        state = params.get("state") or "active"
        name = params.get("name")
        public = params.get("public")
        out = []
        with self.lock:
            for image in self.store.images.values():
                if not self._visible(image):
                    continue
                if state != "all" and image["state"] != state:
                    continue
                if name:
                    # IMGAPI: a leading "~" means substring match
                    if name.startswith("~"):
                        if name[1:] not in image["name"]:
                            continue
                    elif image["name"] != name:
                        continue
                if public not in (None, "") and str(image["public"]).lower() != str(public).lower():
                    continue
                if any(params.get(f) and image.get(f) != params[f] for f in _FILTERS):
                    continue
                out.append(to_api(image))
        return out

    def get(self, image_id):
        with self.lock:
            image = self.store.images.get(image_id)
            if image is None or not self._visible(image):
                raise not_found(f"image {image_id} not found")
            return to_api(image)

    def create_from_machine(self, caller, params):
        if not params.get("machine"):
            raise missing_parameter("machine is a required argument")
        if not params.get("name"):
            raise missing_parameter("Image name is a required argument")
        if not params.get("version"):
            raise missing_parameter("Image version is a required argument")
        with self.lock:
            m = self.machines.live(params["machine"])
            if m["state"] not in ("running", "stopped", "stopping"):
                raise invalid_argument(f"machine {m['id']} is {m['state']}, cannot create an image")
            origin = self.store.images.get(m["image"], {})
            image_id = str(uuid.uuid4())
            image = {
                "id": image_id,
                "name": params["name"],
                "version": params["version"],
                "os": origin.get("os", "other"),
                "type": origin.get("type", "zvol"),
                "requirements": copy.deepcopy(origin.get("requirements", {})),
                "owner": self.account.uuid,
                "public": False,
                "state": "creating",
                "origin": origin.get("id", m["image"]),
                "tags": params.get("tags") if isinstance(params.get("tags"), dict) else {},
                "_machine": m["id"],
                "_caller": caller,
            }
            for field in ("description", "homepage", "eula", "acl"):
                if params.get(field):
                    image[field] = params[field]
            self.store.save_image(image)
            self.backend.snapshot(copy.deepcopy(m), to_api(image))
            return to_api(image)

    def delete(self, image_id):
        with self.lock:
            image = self.store.images.get(image_id)
            if image is None or not self._visible(image):
                raise not_found(f"image {image_id} not found")
            if image["owner"] != self.account.uuid:
                raise not_authorized(f"You do not have permission to delete image {image_id}")
            self.store.delete_image(image_id)
            delete_files = getattr(self.backend, "delete_image", None)
            if delete_files:
                delete_files(image_id)

    def resume_all(self):
        with self.lock:
            for image in self.store.images.values():
                if image["state"] == "creating":
                    m = self.store.machines.get(image.get("_machine"))
                    if m is None:
                        self.on_done(image["id"], False, "source machine is gone")
                    else:
                        self.backend.snapshot(copy.deepcopy(m), to_api(image))

    def on_done(self, image_id, success, error=None):
        with self.lock:
            image = self.store.images.get(image_id)
            if image is None or image["state"] != "creating":
                return
            image = dict(image)
            if success:
                image["state"] = "active"
                image["published_at"] = iso_now()
                image["files"] = [{"compression": "gzip",
                                   "sha1": hashlib.sha1(image_id.encode()).hexdigest(),
                                   "size": 256 * 1024 * 1024}]
            else:
                image["state"] = "failed"
                image["error"] = {"code": "PrepareImageError", "message": error or "failed"}
            self.store.save_image(image)
